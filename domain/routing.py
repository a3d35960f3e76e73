"""Which waiting call goes to which agent: pure selection, no I/O, no clock.

The router process gathers a queue's routing policy, its waiting calls (calls
not currently ringing an agent, in the queue's service order) and a snapshot
of the member agents, and asks ``select_offers`` which offers to make now. It
then reserves each chosen agent (``Agent.reserve``, the concurrency guard) and
records the offer on the queue (``Queue.offer``).

Rules common to every strategy:

* Only agents whose snapshot state is ``available`` are eligible; for
  ``skills_based`` they must also meet every required skill minimum.
* Calls are served in the order given, after a *stable* sort by priority
  (highest first): the queue already orders calls by priority then arrival,
  with requeued calls at the head of their priority band, and the stable sort
  keeps that order within a band.
* Penalty (queue membership, lower is preferred) always ranks first: an agent
  is only chosen when no eligible agent with a lower penalty is left.
* Each call gets the best-ranked agent still free; each agent gets at most one
  call per selection. The last tie-break is the agent id, so the result is a
  function of the inputs alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.agent import Agent, AgentState
from domain.skills import meets, score

__all__ = [
    "AgentSnapshot",
    "Offer",
    "RoutingPolicy",
    "RoutingStrategy",
    "WaitingCall",
    "select_offers",
    "snapshot_of",
]


class RoutingStrategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"
    FEWEST_CALLS = "fewest_calls"
    SKILLS_BASED = "skills_based"


@dataclass(frozen=True)
class RoutingPolicy:
    strategy: RoutingStrategy
    required_skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WaitingCall:
    call_id: UUID
    priority: int  # higher is served first
    enqueued_at: datetime


@dataclass(frozen=True)
class AgentSnapshot:
    agent_id: UUID
    state: AgentState
    idle_since: datetime  # when the agent last became available
    calls_handled_today: int
    skills: Mapping[str, int]
    penalty: int  # from the queue membership; lower is preferred
    last_offered: int | None = None  # ordinal of the agent's last offer; None: never


@dataclass(frozen=True)
class Offer:
    call_id: UUID
    agent_id: UUID


def snapshot_of(
    agent: Agent, *, penalty: int, calls_handled_today: int, last_offered: int | None
) -> AgentSnapshot:
    """The routing view of an agent aggregate; the other facts come from projections."""
    return AgentSnapshot(
        agent_id=agent.id,
        state=agent.state,
        idle_since=agent.state_since,
        calls_handled_today=calls_handled_today,
        skills=dict(agent.skills),
        penalty=penalty,
        last_offered=last_offered,
    )


RankKey = tuple[object, ...]


def _longest_idle(agent: AgentSnapshot, _: Mapping[str, int]) -> RankKey:
    """Longest idle: the agent available for the longest time (earliest
    ``idle_since``) first."""
    return (agent.penalty, agent.idle_since, agent.agent_id)


def _round_robin(agent: AgentSnapshot, _: Mapping[str, int]) -> RankKey:
    """Round robin: the agent whose last offer is oldest (lowest ``last_offered``
    ordinal; never offered comes first) goes next, so offers rotate through the
    members whatever the order they became available in."""
    never_offered = -1
    last = never_offered if agent.last_offered is None else agent.last_offered
    return (agent.penalty, last, agent.agent_id)


def _fewest_calls(agent: AgentSnapshot, _: Mapping[str, int]) -> RankKey:
    """Fewest calls: the agent with the fewest calls handled today first; ties go
    to the longest idle."""
    return (agent.penalty, agent.calls_handled_today, agent.idle_since, agent.agent_id)


def _skills_based(agent: AgentSnapshot, required: Mapping[str, int]) -> RankKey:
    """Skills-based: among agents meeting every required minimum, the best match
    first (highest sum of the agent's levels in the required skills); ties go to
    the longest idle. Higher-priority calls are served first, so they get the
    best-matched agents."""
    return (agent.penalty, -score(agent.skills, required), agent.idle_since, agent.agent_id)


RANKINGS: dict[RoutingStrategy, Callable[[AgentSnapshot, Mapping[str, int]], RankKey]] = {
    RoutingStrategy.LONGEST_IDLE: _longest_idle,
    RoutingStrategy.ROUND_ROBIN: _round_robin,
    RoutingStrategy.FEWEST_CALLS: _fewest_calls,
    RoutingStrategy.SKILLS_BASED: _skills_based,
    # Ring-all ranks only to order its offers; every agent of the tier rings.
    RoutingStrategy.RING_ALL: _longest_idle,
}


def select_offers(
    policy: RoutingPolicy, calls: Sequence[WaitingCall], agents: Sequence[AgentSnapshot]
) -> list[Offer]:
    """The offers to make now, in order.

    For every strategy but ring-all: one ``Offer`` per call, pairing calls in
    service order with free agents in the strategy's rank order, until calls or
    agents run out.

    Ring-all: each call in service order rings *every* free eligible agent of
    the lowest penalty left (one ``Offer`` per agent, ordered longest idle
    first); the next call gets the next penalty tier, if any. With one penalty
    tier only the first waiting call rings.
    """
    free = sorted(
        _eligible(policy, agents),
        key=lambda a: RANKINGS[policy.strategy](a, policy.required_skills),
    )
    ordered_calls = sorted(calls, key=lambda c: -c.priority)
    if policy.strategy == RoutingStrategy.RING_ALL:
        return _ring_all(ordered_calls, free)
    return [Offer(c.call_id, a.agent_id) for c, a in zip(ordered_calls, free, strict=False)]


def _eligible(policy: RoutingPolicy, agents: Sequence[AgentSnapshot]) -> list[AgentSnapshot]:
    # == not is: a snapshot built from a projection may carry the plain string.
    available = [a for a in agents if a.state == AgentState.AVAILABLE]
    if policy.strategy == RoutingStrategy.SKILLS_BASED:
        return [a for a in available if meets(a.skills, policy.required_skills)]
    return available


def _ring_all(calls: Sequence[WaitingCall], ranked: list[AgentSnapshot]) -> list[Offer]:
    offers: list[Offer] = []
    remaining = ranked
    for call in calls:
        if not remaining:
            break
        tier = remaining[0].penalty
        offers += [Offer(call.call_id, a.agent_id) for a in remaining if a.penalty == tier]
        remaining = [a for a in remaining if a.penalty != tier]
    return offers
