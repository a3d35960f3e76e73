"""A queue's live call flow: the calls waiting in it, their events and commands.

One half of the ``Queue`` aggregate (domain/queue.py), written by the B2BUA
workers (callers arriving, hanging up, agents answering) and the routing
process (offers, overflows). It reads the configuration half: members (an
offer rings a member), the service-level threshold (recorded with each
answer and abandon), the overflow target and max wait. An offer also writes
into it: the member's ``last_offered`` ordinal, which round-robin routing
reads.

One visit of a call to this queue::

    enqueue --> waiting --offer(agent)--> ringing --answer(agent)--> gone (answered)
                   ^                       |    ^
                   |                       +----+ miss(agent): one ring of several
                   +------- requeue -------+       ended (ring-all), others ring on
                   (the last ring missed: back to the head of its priority band)
    waiting or ringing --abandon | overflow | transfer_out--> gone

Calls are served by priority (higher first), then arrival; a requeued call goes
to the head of its band, behind the calls of its band that rang an agent too
and arrived before it (``requeue_position``), and its event records the place
it took. A visit is answered at most once: the answer removes
the call, so a second answer (a ring-all race, a retried command) raises
``CallNotQueued``. When a call leaves while ringing, the router must also
cancel the agents' reservations (``Agent.cancel_offer``): the queue only drops
its record of the rings. See ``QueueTally`` for the accounting.

As in domain/queue_config.py, the events are templates that ``Queue``
declares as ``Queue.<Name>``: their stored topics are ``domain.queue:Queue.<Name>``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from domain.addressing import Target, TargetKind
from domain.errors import IllegalTransition, InvalidValue
from domain.limits import check_int, check_uuid
from domain.queue_config import QueueConfiguration
from domain.queue_values import QueuedCall, QueueTally, place, put_back, requeue_position
from domain.routing import WaitingCall
from domain.timed import TimedAggregate
from domain.values import utc_instant

__all__ = ["CallAlreadyQueued", "CallNotQueued", "QueueCallFlow"]

TRANSFER_KINDS = frozenset({TargetKind.QUEUE, TargetKind.NUMBER, TargetKind.IVR})
MAX_PRIORITY = 99


class CallNotQueued(IllegalTransition):
    """The command names a call that is not in this queue."""


class CallAlreadyQueued(IllegalTransition):
    """The call is already waiting in this queue."""


class CallEnqueued(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    priority: int
    transferred_from: UUID | None

    def apply(self, queue: QueueCallFlow) -> None:
        call = QueuedCall(self.call_id, self.priority, self.occurred_at, self.transferred_from)
        queue.calls = place(queue.calls, call, at_head=False)
        queue.tally.offered += 1
        queue.tally.transferred_in += self.transferred_from is not None


class CallOffered(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    agent_id: UUID

    def apply(self, queue: QueueCallFlow) -> None:
        call = queue.call(self.call_id)
        queue._swap_call(call, replace(call, offered_to=(*call.offered_to, self.agent_id),
                                       rung=True))
        queue.tally.agent_offers += 1
        member = queue.members[self.agent_id]
        ordinal = queue.tally.agent_offers
        queue.members[self.agent_id] = replace(member, last_offered=ordinal)


class CallOfferMissed(TimedAggregate.Event):
    """One of the agents ringing for the call let it ring out or rejected it;
    the others still ring (ring-all). The last ring missed is ``call_requeued``."""

    class_version = 1
    call_id: UUID
    agent_id: UUID

    def apply(self, queue: QueueCallFlow) -> None:
        call = queue.call(self.call_id)
        ringing = tuple(a for a in call.offered_to if a != self.agent_id)
        queue._swap_call(call, replace(call, offered_to=ringing))


class CallRequeued(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    # 1-based place in service order it went back to. Added within version 1:
    # events stored before lack it and read back as None (the head of its band).
    position: int | None = None

    def apply(self, queue: QueueCallFlow) -> None:
        call = replace(queue._remove_call(self.call_id), offered_to=())
        queue.calls = put_back(queue.calls, call, self.position)
        queue.tally.requeued += 1


class CallAnswered(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    agent_id: UUID
    wait_s: float
    service_level_s: float  # the threshold when it happened, for faithful history

    def apply(self, queue: QueueCallFlow) -> None:
        queue._remove_call(self.call_id)
        queue.tally.answered += 1
        queue.tally.answered_within_sl += self.wait_s <= self.service_level_s


class CallAbandoned(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    wait_s: float
    service_level_s: float

    def apply(self, queue: QueueCallFlow) -> None:
        queue._remove_call(self.call_id)
        queue.tally.abandoned += 1
        queue.tally.abandoned_within_sl += self.wait_s <= self.service_level_s


class CallOverflowed(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    wait_s: float
    target_kind: str
    target_value: str | None

    def apply(self, queue: QueueCallFlow) -> None:
        queue._remove_call(self.call_id)
        queue.tally.overflowed += 1


class CallTransferredOut(TimedAggregate.Event):
    class_version = 1
    call_id: UUID
    wait_s: float
    target_kind: str
    target_value: str | None

    def apply(self, queue: QueueCallFlow) -> None:
        queue._remove_call(self.call_id)
        queue.tally.transferred_out += 1


class QueueCallFlow(QueueConfiguration):
    """The call-flow half of ``Queue``: its state, commands and queries. It
    extends the configuration half because every step reads settings."""

    def _init_flow(self) -> None:
        """No call waiting, nothing counted (on creation and replay)."""
        self.calls: list[QueuedCall] = []
        self.tally = QueueTally()

    # -- commands --------------------------------------------------------------------

    def enqueue(
        self,
        call_id: UUID,
        priority: int,
        occurred_at: datetime,
        transferred_from: UUID | None = None,
    ) -> None:
        """The call starts waiting; ``transferred_from``: the queue it was moved from."""
        if self._find(check_uuid("call_id", call_id)) is not None:
            raise CallAlreadyQueued(f"call {call_id} is already in queue {self.key}")
        if transferred_from == self.id:
            raise InvalidValue(f"queue {self.key} cannot transfer a call to itself")
        self._trigger(
            CallEnqueued,
            occurred_at,
            call_id=call_id,
            priority=check_int("priority", priority, 0, MAX_PRIORITY),
            transferred_from=None
            if transferred_from is None
            else check_uuid("transferred_from", transferred_from),
        )

    def offer(self, call_id: UUID, agent_id: UUID, occurred_at: datetime) -> None:
        """The call rings ``agent_id`` (reserve the agent first: that is the lock)."""
        call = self.call(call_id)
        self._member(agent_id)
        if agent_id in call.offered_to:
            raise IllegalTransition(f"call {call_id} is already ringing agent {agent_id}")
        self._trigger(CallOffered, occurred_at, call_id=call_id, agent_id=agent_id)

    def miss(self, call_id: UUID, agent_id: UUID, occurred_at: datetime) -> None:
        """``agent_id``'s ring of the call ended unanswered while other agents still
        ring for it; when it was the last ring, the call is requeued instead."""
        ringing = self.call(call_id).offered_to
        if agent_id not in ringing:
            raise IllegalTransition(f"call {call_id} is not ringing agent {agent_id}")
        if len(ringing) == 1:
            raise IllegalTransition(f"call {call_id} rings agent {agent_id} only: requeue it")
        self._trigger(CallOfferMissed, occurred_at, call_id=call_id, agent_id=agent_id)

    def requeue(self, call_id: UUID, occurred_at: datetime) -> None:
        """Every ring of the call ended unanswered: back to the head of its band
        (``requeue_position``)."""
        call = self.call(call_id)
        if not call.ringing:
            raise IllegalTransition(f"call {call_id} is not ringing any agent")
        others = [c for c in self.calls if c.call_id != call_id]
        self._trigger(CallRequeued, occurred_at, call_id=call_id,
                      position=requeue_position(others, call))

    def answer(self, call_id: UUID, agent_id: UUID, occurred_at: datetime) -> None:
        call = self.call(call_id)
        if agent_id not in call.offered_to:
            raise IllegalTransition(f"call {call_id} was not offered to agent {agent_id}")
        self._trigger(
            CallAnswered,
            occurred_at,
            call_id=call_id,
            agent_id=agent_id,
            wait_s=call.wait_s(utc_instant(occurred_at)),
            service_level_s=self.service_level_s,
        )

    def abandon(self, call_id: UUID, occurred_at: datetime) -> None:
        """The caller hung up while waiting or ringing."""
        wait_s = self.call(call_id).wait_s(utc_instant(occurred_at))
        self._trigger(
            CallAbandoned,
            occurred_at,
            call_id=call_id,
            wait_s=wait_s,
            service_level_s=self.service_level_s,
        )

    def overflow(self, call_id: UUID, occurred_at: datetime) -> None:
        """The call leaves for the configured overflow target (usually: max wait reached)."""
        if self.overflow_target is None:
            raise IllegalTransition(f"queue {self.key} has no overflow target")
        self._leave(CallOverflowed, call_id, self.overflow_target, occurred_at)

    def transfer_out(self, call_id: UUID, to: Target, occurred_at: datetime) -> None:
        """The waiting call is moved elsewhere (a queue ``to`` must then enqueue it
        with ``transferred_from`` = this queue's id)."""
        self._check_not_self(to.check_kind(TRANSFER_KINDS, "transfer"))
        self._leave(CallTransferredOut, call_id, to, occurred_at)

    # -- queries -----------------------------------------------------------------------

    def call(self, call_id: UUID) -> QueuedCall:
        call = self._find(call_id)
        if call is None:
            raise CallNotQueued(f"call {call_id} is not in queue {self.key}")
        return call

    def position(self, call_id: UUID) -> int:
        """1-based place in service order, counting calls ringing an agent."""
        return self.calls.index(self.call(call_id)) + 1

    def waiting_calls(self) -> list[WaitingCall]:
        """Calls not ringing anyone, in service order: routing's input."""
        return [
            WaitingCall(c.call_id, c.priority, c.enqueued_at) for c in self.calls if not c.ringing
        ]

    def overdue(self, now: datetime) -> list[UUID]:
        """Calls that have waited ``max_wait_s`` or more (none without an overflow)."""
        limit = self.max_wait_s
        if limit is None:
            return []
        return [c.call_id for c in self.calls if c.wait_s(utc_instant(now)) >= limit]

    def oldest_wait_s(self, now: datetime) -> float | None:
        waits = [c.wait_s(utc_instant(now)) for c in self.calls]
        return max(waits) if waits else None

    # -- state changes, used only by the events' apply methods -------------------------

    def _remove_call(self, call_id: UUID) -> QueuedCall:
        call = self.call(call_id)
        self.calls = [c for c in self.calls if c.call_id != call_id]
        return call

    def _swap_call(self, old: QueuedCall, new: QueuedCall) -> None:
        self.calls = [new if c is old else c for c in self.calls]

    # -- helpers -----------------------------------------------------------------------

    def _find(self, call_id: UUID) -> QueuedCall | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def _leave(
        self,
        event_class: type[TimedAggregate.Event],
        call_id: UUID,
        to: Target,
        occurred_at: datetime,
    ) -> None:
        self._trigger(
            event_class,
            occurred_at,
            call_id=call_id,
            wait_s=self.call(call_id).wait_s(utc_instant(occurred_at)),
            target_kind=to.kind.value,
            target_value=to.value,
        )
