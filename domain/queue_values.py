"""Value types held by the Queue aggregate: members, queued calls, the tally."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

__all__ = ["QueueMember", "QueueTally", "QueuedCall", "place", "put_back", "requeue_position"]


@dataclass(frozen=True)
class QueueMember:
    penalty: int  # lower is preferred by routing
    last_offered: int | None = None  # the queue's offer ordinal of this member's last offer


@dataclass(frozen=True)
class QueuedCall:
    call_id: UUID
    priority: int  # higher is served first
    enqueued_at: datetime  # when it entered *this* queue: waits are per queue
    transferred_from: UUID | None = None  # the queue it came from, if any
    offered_to: tuple[UUID, ...] = ()  # agents ringing for it now
    rung: bool = False  # it has rung an agent during this visit (see requeue_position)

    @property
    def ringing(self) -> bool:
        return bool(self.offered_to)

    def wait_s(self, now: datetime) -> float:
        # Clocks of different processes may disagree slightly; a wait is never negative.
        return max(0.0, (now - self.enqueued_at).total_seconds())


def place(calls: Sequence[QueuedCall], call: QueuedCall, *, at_head: bool) -> list[QueuedCall]:
    """``calls`` with ``call`` inserted in service order: higher priority first,
    and within its priority band at the tail (a new arrival) or the head (how a
    requeued call was placed before ``CallRequeued`` recorded its position)."""

    def behind(other: QueuedCall) -> bool:
        if at_head:
            return other.priority <= call.priority
        return other.priority < call.priority

    index = next((i for i, other in enumerate(calls) if behind(other)), len(calls))
    return _insert(calls, call, index)


def requeue_position(calls: Sequence[QueuedCall], call: QueuedCall) -> int:
    """The 1-based place in ``calls`` (the queue without it) where a requeued
    ``call`` goes back: the head of its priority band, ahead of the calls that
    never rang an agent (it was served first, it has waited longer), but behind
    the calls of its band that rang one too and arrived before it. So calls
    requeued together (a sweep timing out several rings) keep their arrival
    order among themselves, whatever order their rings ended in."""

    def ahead(other: QueuedCall) -> bool:
        if other.priority != call.priority:
            return other.priority > call.priority
        return other.rung and other.enqueued_at <= call.enqueued_at

    return next((i for i, other in enumerate(calls) if not ahead(other)), len(calls)) + 1


def put_back(calls: Sequence[QueuedCall], call: QueuedCall,
             position: int | None) -> list[QueuedCall]:
    """``calls`` with the requeued ``call`` at ``position`` as its event recorded it
    (the aggregate and the projections then agree whatever they remember of
    earlier rings); an event stored before positions were: the head of its band."""
    if position is None:
        return place(calls, call, at_head=True)
    return _insert(calls, call, min(max(position - 1, 0), len(calls)))


def _insert(calls: Sequence[QueuedCall], call: QueuedCall, index: int) -> list[QueuedCall]:
    return [*calls[:index], call, *calls[index:]]


@dataclass
class QueueTally:
    """Running totals since the queue was created; interval reports come from
    the events in projections, this is the always-consistent live count.

    Every call that enters the queue is counted once in ``offered`` (the ACD
    meaning: offered *to the queue*) and leaves it exactly once, so
    ``offered == answered + abandoned + overflowed + transferred_out + waiting``.
    A call moved from queue A to queue B is offered + transferred_out in A and
    offered + transferred_in (+ answered) in B: offered once to each, answered
    once. ``agent_offers`` counts rings to agents (a call may ring several).
    """

    offered: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    abandoned: int = 0
    abandoned_within_sl: int = 0
    overflowed: int = 0
    transferred_in: int = 0
    transferred_out: int = 0
    requeued: int = 0
    agent_offers: int = 0

    def service_level(self) -> float | None:
        """answered within T / (answered + abandoned after T).

        Calls abandoned within T are excluded (the caller gave up before the
        queue could be expected to answer); overflowed and transferred-out
        calls are excluded too (they left by policy, not by lack of service).
        None before any call counts.
        """
        counted = self.answered + self.abandoned - self.abandoned_within_sl
        return self.answered_within_sl / counted if counted else None

    def abandon_rate(self) -> float | None:
        """abandoned / (answered + abandoned); None before any call counts."""
        finished = self.answered + self.abandoned
        return self.abandoned / finished if finished else None
