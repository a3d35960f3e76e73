"""Call-flow handlers: what happens to queues and agents as a call moves through
the call centre. Small plain functions over a ``Unit``; the service runs each
one as a single transaction, so every step below is all-or-nothing across the
queue and the agents it touches.

Rules that span aggregates live here (each aggregate enforces its own):
- an offer reserves the agent (the concurrency guard) and records the ring on
  the queue, together, and only for a call that is not ringing already;
- an answered offer answers the call in the queue and withdraws every other
  ring of the same call (ring-all);
- a missed offer puts the call back at the head of its band once no agent is
  ringing for it any more, and otherwise records on the queue that this agent
  no longer rings: either way a miss writes the queue, so two misses of one
  ring-all call racing each other conflict on its version, and the loser,
  run again on what the winner wrote, is the last miss and requeues the call;
- a call leaving the queue while ringing (abandon, overflow, transfer)
  withdraws its rings without counting misses;
- a transfer or overflow to another queue enqueues the call there, marked as
  transferred from this one, keeping its priority.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from uuid import UUID

from application.unit import Unit
from domain.addressing import Target, TargetKind
from domain.agent import Agent, AgentState
from domain.errors import IllegalTransition, InvalidValue
from domain.queue import CallNotQueued, Queue

__all__ = [
    "abandon",
    "accept",
    "end_call",
    "enqueue",
    "miss",
    "offer",
    "overflow",
    "reserve_direct",
    "transfer",
]


def enqueue(unit: Unit, queue_id: UUID, call_id: UUID, priority: int, at: datetime,
            transferred_from: UUID | None = None) -> None:
    unit.get(Queue, queue_id).enqueue(call_id, priority, at, transferred_from)


def offer(unit: Unit, queue_id: UUID, call_id: UUID, agent_ids: Sequence[UUID],
          at: datetime) -> None:
    """Ring ``agent_ids`` (several only for ring-all) for the waiting call."""
    if not agent_ids:
        raise InvalidValue("an offer needs at least one agent")
    queue = unit.get(Queue, queue_id)
    ringing = queue.call(call_id).offered_to
    if ringing:
        # One offer per visit: a router deciding from a stale view must not add
        # rings to a call that rings already (ring-all rings its tier at once).
        raise IllegalTransition(f"call {call_id} is already ringing {len(ringing)} agent(s)")
    for agent_id in agent_ids:
        unit.get(Agent, agent_id).reserve(call_id, queue_id, queue.offer_timeout_s, at)
        queue.offer(call_id, agent_id, at)


def reserve_direct(unit: Unit, agent_id: UUID, call_id: UUID, offer_timeout_s: float,
                   at: datetime) -> None:
    """Offer a call dialled straight to the agent (no queue)."""
    unit.get(Agent, agent_id).reserve(call_id, None, offer_timeout_s, at)


def accept(unit: Unit, agent_id: UUID, call_id: UUID, at: datetime) -> None:
    agent = unit.get(Agent, agent_id)
    queue_id = agent.current_queue_id
    agent.accept_offer(call_id, at)
    if queue_id is None:
        return
    queue = unit.get(Queue, queue_id)
    others = [a for a in queue.call(call_id).offered_to if a != agent_id]
    queue.answer(call_id, agent_id, at)
    _withdraw(unit, others, call_id, at)


def miss(unit: Unit, agent_id: UUID, call_id: UUID, at: datetime) -> None:
    """The agent let the offer ring out (or rejected it): one miss counted; the
    call goes back to the head of its band when nobody else rings for it, and
    the queue records the ring's end otherwise (see the module's rules)."""
    agent = unit.get(Agent, agent_id)
    queue_id = agent.current_queue_id
    agent.miss_offer(call_id, at)
    if queue_id is None:
        return
    queue = unit.get(Queue, queue_id)
    try:
        ringing = queue.call(call_id).offered_to
    except CallNotQueued:
        return  # the call left meanwhile (its leaving withdrew the other rings)
    # The agents, not only the queue's list, say who still rings: a ring-all call
    # whose other misses were recorded before the queue kept them (on the agents
    # only) must still be requeued by its last one.
    if _still_ringing(unit, [a for a in ringing if a != agent_id], call_id):
        queue.miss(call_id, agent_id, at)
    else:
        queue.requeue(call_id, at)


def abandon(unit: Unit, queue_id: UUID, call_id: UUID, at: datetime) -> None:
    _leave(unit, queue_id, call_id, at, lambda queue: queue.abandon(call_id, at))


def overflow(unit: Unit, queue_id: UUID, call_id: UUID, at: datetime) -> None:
    queue = unit.get(Queue, queue_id)
    target = queue.overflow_target
    priority = queue.call(call_id).priority
    _leave(unit, queue_id, call_id, at, lambda q: q.overflow(call_id, at))
    if target is not None and target.kind is TargetKind.QUEUE:
        unit.get(Queue, target.aggregate_id).enqueue(call_id, priority, at, queue_id)


def transfer(unit: Unit, queue_id: UUID, call_id: UUID, to: Target, at: datetime) -> None:
    queue = unit.get(Queue, queue_id)
    priority = queue.call(call_id).priority
    destination = unit.get(Queue, to.aggregate_id) if to.kind is TargetKind.QUEUE else None
    _leave(unit, queue_id, call_id, at, lambda q: q.transfer_out(call_id, to, at))
    if destination is not None:
        destination.enqueue(call_id, priority, at, transferred_from=queue_id)


def end_call(unit: Unit, agent_id: UUID, call_id: UUID, at: datetime) -> None:
    """The answered call ended: the queue's wrap-up time follows (none for direct calls)."""
    agent = unit.get(Agent, agent_id)
    queue_id = agent.current_queue_id
    wrap_up_s = 0.0 if queue_id is None else unit.get(Queue, queue_id).wrap_up_s
    agent.end_call(call_id, wrap_up_s, at)


def _leave(unit: Unit, queue_id: UUID, call_id: UUID, at: datetime,
           leave: Callable[[Queue], None]) -> None:
    queue = unit.get(Queue, queue_id)
    ringing = queue.call(call_id).offered_to
    leave(queue)
    _withdraw(unit, ringing, call_id, at)


def _reserved_for(agent: Agent | None, call_id: UUID) -> bool:
    return (agent is not None and agent.state is AgentState.RESERVED
            and agent.current_call_id == call_id)


def _still_ringing(unit: Unit, agent_ids: Iterable[UUID], call_id: UUID) -> bool:
    return any(_reserved_for(unit.find(Agent, a), call_id) for a in agent_ids)


def _withdraw(unit: Unit, agent_ids: Iterable[UUID], call_id: UUID, at: datetime) -> None:
    """Cancel the rings still outstanding for the call (no miss is counted)."""
    for agent_id in agent_ids:
        agent = unit.find(Agent, agent_id)
        if agent is not None and _reserved_for(agent, call_id):
            agent.cancel_offer(call_id, at)
