"""The Agent aggregate's offers: the reservation (call, queue, offer deadline),
accepting, missing or cancelling the offer, the end of the call and its wrap-up,
auto-pause after missed offers in a row, and the reservation as a concurrency
guard (two reservations of one agent version cannot both be saved)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from domain.agent import AUTO_PAUSE_REASON, Agent, AgentState, WrongCall
from domain.errors import IllegalTransition, InvalidValue
from tests.unit.agent_support import CALL, OTHER_CALL, QUEUE, T0, agent_in, at


def test_reserve_holds_the_call_queue_and_offer_deadline() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.reserve(CALL, QUEUE, 15, at(10))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.Reserved)
    assert (event.call_id, event.queue_id, event.offer_deadline) == (CALL, QUEUE, at(25))
    assert agent.current_call_id == CALL
    assert agent.current_queue_id == QUEUE
    assert not agent.offer_expired(at(24.9))
    assert agent.offer_expired(at(25))


def test_reserve_for_a_direct_call_has_no_queue() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.reserve(CALL, None, 20, at(10))
    assert agent.current_queue_id is None


@pytest.mark.parametrize("timeout", [0, -1, 601, float("nan"), True])
def test_reserve_refuses_a_bad_offer_timeout(timeout: float) -> None:
    agent = agent_in(AgentState.AVAILABLE)
    with pytest.raises(InvalidValue):
        agent.reserve(CALL, QUEUE, timeout, at(10))
    assert agent.state is AgentState.AVAILABLE


def test_reserve_refuses_a_second_call_while_reserved() -> None:
    agent = agent_in(AgentState.RESERVED)
    with pytest.raises(IllegalTransition):
        agent.reserve(OTHER_CALL, QUEUE, 15, at(3))
    assert agent.current_call_id == CALL


@pytest.mark.parametrize(
    ("state", "command"),
    [
        (AgentState.RESERVED, lambda a: a.accept_offer(OTHER_CALL, at(9))),
        (AgentState.RESERVED, lambda a: a.miss_offer(OTHER_CALL, at(9))),
        (AgentState.RESERVED, lambda a: a.cancel_offer(OTHER_CALL, at(9))),
        (AgentState.ON_CALL, lambda a: a.end_call(OTHER_CALL, 0, at(9))),
    ],
)
def test_commands_naming_another_call_raise_wrong_call(
    state: AgentState, command: Callable[[Agent], None]
) -> None:
    agent = agent_in(state)
    with pytest.raises(WrongCall):
        command(agent)
    assert agent.state is state
    assert agent.current_call_id == CALL


def test_accept_offer_puts_the_agent_on_the_offered_call() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.accept_offer(CALL, at(4))
    assert agent.state is AgentState.ON_CALL
    assert agent.current_call_id == CALL
    assert agent.current_queue_id == QUEUE
    assert agent.offer_deadline is None


def test_end_call_starts_wrap_up_for_the_queue_length_and_counts_the_call() -> None:
    agent = agent_in(AgentState.ON_CALL)
    agent.end_call(CALL, 30, at(60))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.CallEnded)
    assert (event.call_id, event.queue_id, event.wrap_up_until) == (CALL, QUEUE, at(90))
    assert agent.state is AgentState.WRAP_UP
    assert agent.current_call_id is None
    assert agent.calls_handled == 1
    assert not agent.wrap_up_due(at(89))
    assert agent.wrap_up_due(at(90))


def test_end_call_without_wrap_up_goes_straight_to_available() -> None:
    agent = agent_in(AgentState.ON_CALL)
    agent.end_call(CALL, 0, at(60))
    assert agent.state is AgentState.AVAILABLE
    assert agent.wrap_up_until is None
    assert agent.idle_since == at(60)


def test_end_call_refuses_a_negative_wrap_up() -> None:
    with pytest.raises(InvalidValue):
        agent_in(AgentState.ON_CALL).end_call(CALL, -1, at(60))


def test_finish_wrap_up_makes_the_agent_available() -> None:
    agent = agent_in(AgentState.WRAP_UP)
    agent.finish_wrap_up(at(80))
    assert agent.state is AgentState.AVAILABLE
    assert agent.wrap_up_until is None


def test_miss_offer_counts_the_miss_and_frees_the_agent() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.miss_offer(CALL, at(17))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.OfferMissed)
    assert not event.auto_paused
    assert agent.state is AgentState.AVAILABLE
    assert agent.current_call_id is None
    assert (agent.missed_offers, agent.consecutive_misses) == (1, 1)


def test_cancel_offer_frees_the_agent_without_counting_a_miss() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.cancel_offer(CALL, at(3))
    assert agent.state is AgentState.AVAILABLE
    assert agent.current_call_id is None
    assert agent.missed_offers == 0


def miss_once(agent: Agent, second: float, auto_pause_after: int | None = None) -> None:
    call = uuid4()
    agent.reserve(call, QUEUE, 15, at(second))
    agent.miss_offer(call, at(second + 15), auto_pause_after=auto_pause_after)


def test_agent_auto_pauses_after_the_configured_misses_in_a_row() -> None:
    agent = Agent.create("bob", "Bob", occurred_at=T0, auto_pause_after=2)
    agent.login("sip:bob@pbx.example.com", at(1))
    miss_once(agent, 10)
    after_one = agent.state
    miss_once(agent, 40)
    assert (after_one, agent.state) == (AgentState.AVAILABLE, AgentState.PAUSED)
    assert agent.pause_reason == AUTO_PAUSE_REASON
    assert (agent.missed_offers, agent.consecutive_misses) == (2, 0)


def test_an_accepted_offer_resets_the_consecutive_misses() -> None:
    agent = Agent.create("bob", "Bob", occurred_at=T0, auto_pause_after=2)
    agent.login("sip:bob@pbx.example.com", at(1))
    miss_once(agent, 10)
    agent.reserve(CALL, QUEUE, 15, at(30))
    agent.accept_offer(CALL, at(33))
    agent.end_call(CALL, 0, at(90))
    miss_once(agent, 100)
    assert agent.state is AgentState.AVAILABLE
    assert (agent.missed_offers, agent.consecutive_misses) == (2, 1)


def test_a_threshold_passed_in_overrides_the_agents_own() -> None:
    agent = agent_in(AgentState.AVAILABLE)  # no threshold of its own
    miss_once(agent, 10, auto_pause_after=1)
    assert agent.state is AgentState.PAUSED
    assert agent.pause_reason == AUTO_PAUSE_REASON


def test_a_threshold_passed_in_must_be_positive() -> None:
    agent = agent_in(AgentState.RESERVED)
    with pytest.raises(InvalidValue):
        agent.miss_offer(CALL, at(17), auto_pause_after=0)
    assert agent.state is AgentState.RESERVED


def test_without_a_threshold_misses_never_pause() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    for n in range(5):
        miss_once(agent, 10 + 20 * n)
    assert agent.state is AgentState.AVAILABLE
    assert agent.consecutive_misses == 5


def test_two_reservations_of_one_agent_version_cannot_both_be_saved() -> None:
    app: Application[UUID] = Application()
    agent = agent_in(AgentState.AVAILABLE, collected=False)
    app.save(agent)
    first: Agent = app.repository.get(agent.id)
    second: Agent = app.repository.get(agent.id)
    first.reserve(CALL, QUEUE, 15, at(2))
    second.reserve(OTHER_CALL, QUEUE, 15, at(2))
    app.save(first)
    with pytest.raises(IntegrityError):
        app.save(second)
    assert app.repository.get(agent.id).current_call_id == CALL
