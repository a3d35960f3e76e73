"""Pure routing selection: every strategy's rule and tie-breaks, penalties,
eligibility, call order, and ring-all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from domain.agent import Agent, AgentState
from domain.routing import (
    AgentSnapshot,
    Offer,
    RoutingPolicy,
    RoutingStrategy,
    WaitingCall,
    select_offers,
    snapshot_of,
)

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
A1, A2, A3, A4 = (UUID(int=n) for n in (1, 2, 3, 4))
C1, C2, C3 = (UUID(int=100 + n) for n in (1, 2, 3))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(
    agent_id: UUID,
    *,
    idle: float = 0,
    handled: int = 0,
    penalty: int = 0,
    last_offered: int | None = None,
    skills: dict[str, int] | None = None,
    state: AgentState = AgentState.AVAILABLE,
) -> AgentSnapshot:
    return AgentSnapshot(
        agent_id=agent_id,
        state=state,
        idle_since=at(idle),
        calls_handled_today=handled,
        skills=skills or {},
        penalty=penalty,
        last_offered=last_offered,
    )


def call(call_id: UUID, priority: int = 0, arrived: float = 0) -> WaitingCall:
    return WaitingCall(call_id, priority, at(arrived))


def chosen(strategy: RoutingStrategy, agents: list[AgentSnapshot], **policy: object) -> list[UUID]:
    """The agents the single waiting call C1 is offered to."""
    offers = select_offers(RoutingPolicy(strategy, **policy), [call(C1)], agents)  # type: ignore[arg-type]
    assert {o.call_id for o in offers} <= {C1}
    return [o.agent_id for o in offers]


# -- longest idle -------------------------------------------------------------------


def test_longest_idle_picks_the_agent_available_for_longest() -> None:
    agents = [agent(A1, idle=30), agent(A2, idle=10), agent(A3, idle=20)]
    assert chosen(RoutingStrategy.LONGEST_IDLE, agents) == [A2]


def test_longest_idle_tie_goes_to_the_lowest_agent_id() -> None:
    agents = [agent(A3, idle=10), agent(A2, idle=10)]
    assert chosen(RoutingStrategy.LONGEST_IDLE, agents) == [A2]


# -- round robin --------------------------------------------------------------------


def test_round_robin_picks_the_agent_whose_last_offer_is_oldest() -> None:
    agents = [agent(A1, last_offered=7), agent(A2, last_offered=5), agent(A3, last_offered=9)]
    assert chosen(RoutingStrategy.ROUND_ROBIN, agents) == [A2]


def test_round_robin_offers_never_offered_agents_first_by_agent_id() -> None:
    agents = [agent(A1, last_offered=1), agent(A3), agent(A2)]
    assert chosen(RoutingStrategy.ROUND_ROBIN, agents) == [A2]


def test_round_robin_ignores_idle_time() -> None:
    agents = [agent(A1, idle=0, last_offered=2), agent(A2, idle=50, last_offered=1)]
    assert chosen(RoutingStrategy.ROUND_ROBIN, agents) == [A2]


# -- fewest calls -------------------------------------------------------------------


def test_fewest_calls_picks_the_agent_with_fewest_calls_today() -> None:
    agents = [agent(A1, handled=5), agent(A2, handled=2), agent(A3, handled=9)]
    assert chosen(RoutingStrategy.FEWEST_CALLS, agents) == [A2]


def test_fewest_calls_tie_goes_to_the_longest_idle_then_agent_id() -> None:
    agents = [agent(A1, handled=2, idle=20), agent(A3, handled=2, idle=10), agent(A4, idle=10)]
    assert chosen(RoutingStrategy.FEWEST_CALLS, agents) == [A4]
    agents = [
        agent(A1, handled=2, idle=20),
        agent(A3, handled=2, idle=10),
        agent(A2, idle=10, handled=2),
    ]
    assert chosen(RoutingStrategy.FEWEST_CALLS, agents) == [A2]


# -- skills based -------------------------------------------------------------------


def test_skills_based_only_offers_agents_meeting_every_minimum() -> None:
    agents = [
        agent(A1, skills={"spanish": 90}),  # lacks billing
        agent(A2, skills={"spanish": 40, "billing": 90}),  # spanish too low
        agent(A3, skills={"spanish": 50, "billing": 10}, idle=30),
    ]
    required = {"spanish": 50, "billing": 10}
    assert chosen(RoutingStrategy.SKILLS_BASED, agents, required_skills=required) == [A3]


def test_skills_based_prefers_the_best_match() -> None:
    agents = [
        agent(A1, skills={"spanish": 60, "billing": 20}),
        agent(A2, skills={"spanish": 90, "billing": 20, "french": 100}),  # french not required
    ]
    required = {"spanish": 50, "billing": 10}
    assert chosen(RoutingStrategy.SKILLS_BASED, agents, required_skills=required) == [A2]


def test_skills_based_tie_goes_to_the_longest_idle() -> None:
    agents = [agent(A1, skills={"spanish": 60}, idle=9), agent(A2, skills={"spanish": 60}, idle=3)]
    required = {"spanish": 50}
    assert chosen(RoutingStrategy.SKILLS_BASED, agents, required_skills=required) == [A2]


def test_skills_based_gives_the_higher_priority_call_the_best_match() -> None:
    agents = [agent(A1, skills={"spanish": 60}), agent(A2, skills={"spanish": 95})]
    calls = [call(C1, priority=0, arrived=0), call(C2, priority=5, arrived=30)]
    offers = select_offers(
        RoutingPolicy(RoutingStrategy.SKILLS_BASED, {"spanish": 50}), calls, agents
    )
    assert offers == [Offer(C2, A2), Offer(C1, A1)]


def test_skills_based_without_requirements_is_longest_idle() -> None:
    agents = [agent(A1, idle=5), agent(A2, idle=1)]
    assert chosen(RoutingStrategy.SKILLS_BASED, agents) == [A2]


# -- ring all -----------------------------------------------------------------------


def test_ring_all_offers_the_call_to_every_available_agent() -> None:
    agents = [agent(A3, idle=1), agent(A1, idle=5), agent(A2, state=AgentState.ON_CALL)]
    assert chosen(RoutingStrategy.RING_ALL, agents) == [A3, A1]


def test_ring_all_rings_only_the_first_call_when_all_agents_share_a_penalty() -> None:
    agents = [agent(A1), agent(A2)]
    offers = select_offers(RoutingPolicy(RoutingStrategy.RING_ALL), [call(C1), call(C2)], agents)
    assert offers == [Offer(C1, A1), Offer(C1, A2)]


def test_ring_all_rings_the_lowest_penalty_tier_and_gives_the_next_tier_to_the_next_call() -> None:
    agents = [agent(A1, penalty=1), agent(A2), agent(A3), agent(A4, penalty=2)]
    calls = [call(C1, arrived=0), call(C2, arrived=1)]
    offers = select_offers(RoutingPolicy(RoutingStrategy.RING_ALL), calls, agents)
    assert offers == [Offer(C1, A2), Offer(C1, A3), Offer(C2, A1)]


# -- rules common to every strategy ------------------------------------------------

ONE_AGENT_STRATEGIES = [s for s in RoutingStrategy if s is not RoutingStrategy.RING_ALL]


@pytest.mark.parametrize("strategy", list(RoutingStrategy))
def test_only_available_agents_are_offered_calls(strategy: RoutingStrategy) -> None:
    busy = [s for s in AgentState if s is not AgentState.AVAILABLE]
    agents = [agent(UUID(int=10 + i), state=s) for i, s in enumerate(busy)]
    assert chosen(strategy, [*agents, agent(A4, idle=99)]) == [A4]
    assert chosen(strategy, agents) == []


@pytest.mark.parametrize("strategy", list(RoutingStrategy))
def test_a_lower_penalty_wins_over_every_strategy_preference(strategy: RoutingStrategy) -> None:
    best_otherwise = agent(A1, idle=0, handled=0, last_offered=None, penalty=1)
    preferred = agent(A2, idle=50, handled=9, last_offered=99, penalty=0)
    assert chosen(strategy, [best_otherwise, preferred])[0] == A2


@pytest.mark.parametrize("strategy", ONE_AGENT_STRATEGIES)
def test_calls_are_served_by_priority_then_given_order(strategy: RoutingStrategy) -> None:
    agents = [agent(A1, idle=0, last_offered=1), agent(A2, idle=5, last_offered=2)]
    calls = [call(C1, priority=0), call(C2, priority=0), call(C3, priority=3)]
    offers = select_offers(RoutingPolicy(strategy), calls, agents)
    assert [o.call_id for o in offers] == [C3, C1]
    assert [o.agent_id for o in offers] == [A1, A2]


@pytest.mark.parametrize("strategy", ONE_AGENT_STRATEGIES)
def test_each_agent_gets_at_most_one_call_and_extra_calls_wait(strategy: RoutingStrategy) -> None:
    offers = select_offers(RoutingPolicy(strategy), [call(C1), call(C2)], [agent(A1)])
    assert offers == [Offer(C1, A1)]


@pytest.mark.parametrize("strategy", list(RoutingStrategy))
def test_nothing_is_offered_without_calls(strategy: RoutingStrategy) -> None:
    assert select_offers(RoutingPolicy(strategy), [], [agent(A1)]) == []


def test_a_state_given_as_a_plain_string_is_understood() -> None:
    snapshot = agent(A1)
    plain = AgentSnapshot(**{**snapshot.__dict__, "state": "available"})
    assert chosen(RoutingStrategy.LONGEST_IDLE, [plain]) == [A1]


def test_snapshot_of_an_agent_takes_its_state_skills_and_idle_time() -> None:
    live = Agent.create("carol", "Carol", {"spanish": 70}, occurred_at=T0)
    live.login("sip:carol@pbx.example.com", at(12))
    snapshot = snapshot_of(live, penalty=2, calls_handled_today=4, last_offered=17)
    assert snapshot == AgentSnapshot(
        agent_id=live.id,
        state=AgentState.AVAILABLE,
        idle_since=at(12),
        calls_handled_today=4,
        skills={"spanish": 70},
        penalty=2,
        last_offered=17,
    )
