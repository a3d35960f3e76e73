"""The Call aggregate: the whole life of one call through the B2BUA.

Commands are imperative (``answer``), events past tense (``Call.Answered``).
Each command first decides (idempotent repeat, illegal transition or bad
argument) and only then triggers exactly one event; the events' ``apply``
methods hold every state change, so replaying stored events rebuilds the same
state without re-running any rule.

Each command method is also a value in ``domain.call_commands`` (``EndCall`` for
``end``, its fields the method's arguments): what the SIP adapter builds and
``CallService.handle`` runs. A new command is a method here plus a value there.

SIP retransmits: a repeated INVITE maps to the same aggregate id, and a
repeated 180, 200 OK, re-INVITE (hold/resume) or BYE is a silent no-op.

Events store enum values as plain strings (``StrEnum`` members are strings)
and every event has ``class_version = 1``: bump it together with an
``upcast_v1_v2`` static method when an event's shape changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.addressing import DEFAULT_TENANT, check_tenant
from domain.call_recordings import RecordingCommands
from domain.call_supervision import SupervisionCommands
from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.values import (
    BEFORE_ANSWER,
    CONNECTED,
    UNANSWERED_DISPOSITIONS,
    ZERO,
    CallStatus,
    Direction,
    Disposition,
    HangupSide,
    HoldSide,
    MediaQuality,
    StoredRecording,
    SupervisionMode,
    Transfer,
    TransferKind,
    checked_sip_status,
    enum_member,
    non_empty,
    utc_instant,
)

__all__ = ["Call", "CallNotFound", "CallStatus", "Direction", "Disposition", "HangupSide",
           "HoldSide", "MediaQuality", "StoredRecording", "SupervisionMode", "Transfer",
           "TransferKind"]

# Fixed forever: a call's id is uuid5(this, SIP Call-ID), so changing it would
# give calls already stored a different id than their retransmitted INVITEs.
CALL_ID_NAMESPACE = UUID("6f0c1c52-55c3-4b55-9a53-4d8a1e0c2a11")


class CallNotFound(DomainError):  # noqa: N818 - reads as the rule that was broken
    """A command named a call id that has no history."""


class Call(Aggregate, RecordingCommands, SupervisionCommands):
    """A call; its recording and supervision commands are in ``domain.call_recordings``
    and ``domain.call_supervision`` (the mixins hold no state and no events)."""

    class Event(Aggregate.Event):
        occurred_at: datetime  # when the protocol fact happened (UTC), not store time

    class Initiated(Event, Aggregate.Created):
        class_version = 1
        caller: str
        callee: str
        direction: str
        trunk: str | None
        sip_call_id: str
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class Routed(Event):
        class_version = 1
        target: str

        def apply(self, call: Call) -> None:
            call.status = CallStatus.ROUTED
            call.target = self.target

    class Ringing(Event):
        class_version = 1

        def apply(self, call: Call) -> None:
            call.status = CallStatus.RINGING
            # A failover re-route rings again; the first ring is what wait metrics use.
            if call.ringing_at is None:
                call.ringing_at = self.occurred_at

    class Answered(Event):
        class_version = 1

        def apply(self, call: Call) -> None:
            call.status = CallStatus.ANSWERED
            call.answered_at = self.occurred_at

    # Held/Resumed: ``side`` (a HoldSide value) was added within version 1, a new
    # optional field (docs/events.md): events stored before it read back as "unknown".
    class Held(Event):
        class_version = 1
        side: str = HoldSide.UNKNOWN.value

        def apply(self, call: Call) -> None:
            call.status = CallStatus.HELD
            call.hold_started_at = self.occurred_at
            call.hold_count += 1

    class Resumed(Event):
        class_version = 1
        side: str = HoldSide.UNKNOWN.value

        def apply(self, call: Call) -> None:
            call.close_hold(self.occurred_at)
            call.status = CallStatus.ANSWERED

    class Transferred(Event):
        class_version = 1
        kind: str
        target: str

        def apply(self, call: Call) -> None:
            call.transfers.append(Transfer(TransferKind(self.kind), self.target, self.occurred_at))
            call.target = self.target

    class MediaQualityRecorded(Event):
        class_version = 1
        mos: float
        jitter_ms: float
        loss_pct: float
        rtt_ms: float | None

        def apply(self, call: Call) -> None:
            call.media_quality = MediaQuality(self.mos, self.jitter_ms, self.loss_pct,
                                              self.rtt_ms)

    class Queued(Event):
        class_version = 1
        queue: str

        def apply(self, call: Call) -> None:
            call.queue = self.queue
            if call.queued_at is None:
                call.queued_at = self.occurred_at

    class AgentConnected(Event):
        class_version = 1
        agent: str

        def apply(self, call: Call) -> None:
            call.agents.append(self.agent)

    class RecordingAvailable(Event):
        class_version = 1
        ref: str
        duration_s: float

        def apply(self, call: Call) -> None:
            call.recording = (self.ref, self.duration_s)

    class RecordingStored(Event):
        """The recording is in object storage: ``bucket``/``key``, ``size_bytes``
        long with that ``sha256`` (hex). Never a credential or a presigned URL."""

        class_version = 1
        bucket: str
        key: str
        size_bytes: int
        sha256: str

        def apply(self, call: Call) -> None:
            call.stored_recording = StoredRecording(self.bucket, self.key, self.size_bytes,
                                                    self.sha256)

    class RecordingDeleted(Event):
        """The stored object is deleted (``reason``: e.g. ``retention``)."""

        class_version = 1
        bucket: str
        key: str
        reason: str

        def apply(self, call: Call) -> None:
            call.stored_recording = None

    class SupervisionStarted(Event):
        class_version = 1
        supervisor: str
        mode: str

        def apply(self, call: Call) -> None:
            call.supervisors[self.supervisor] = SupervisionMode(self.mode)

    class SupervisionEnded(Event):
        class_version = 1
        supervisor: str

        def apply(self, call: Call) -> None:
            call.supervisors.pop(self.supervisor, None)

    class Ended(Event):
        class_version = 1
        disposition: str
        hangup_cause: str
        hangup_side: str
        sip_status: int | None

        def apply(self, call: Call) -> None:
            call.close_hold(self.occurred_at)
            call.supervisors.clear()
            call.status = CallStatus.ENDED
            call.ended_at = self.occurred_at
            call.disposition = Disposition(self.disposition)
            call.hangup_cause = self.hangup_cause
            call.hangup_side = HangupSide(self.hangup_side)
            call.sip_status = self.sip_status

    def __init__(self, *, tenant: str = DEFAULT_TENANT, caller: str, callee: str,
                 direction: str, trunk: str | None, sip_call_id: str,
                 occurred_at: datetime) -> None:
        # Runs for Initiated, live and on replay: it is that event's apply.
        self.tenant = tenant
        self.status = CallStatus.INITIATED
        self.caller = caller
        self.callee = callee
        self.direction = Direction(direction)
        self.trunk = trunk
        self.sip_call_id = sip_call_id
        self.initiated_at = occurred_at
        self.target: str | None = None
        self.ringing_at: datetime | None = None
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.hold_started_at: datetime | None = None
        self.hold_total: timedelta = ZERO
        self.hold_count = 0
        self.transfers: list[Transfer] = []
        self.media_quality: MediaQuality | None = None
        self.queue: str | None = None
        self.queued_at: datetime | None = None
        self.agents: list[str] = []
        self.recording: tuple[str, float] | None = None
        self.stored_recording: StoredRecording | None = None
        self.supervisors: dict[str, SupervisionMode] = {}
        self.disposition: Disposition | None = None
        self.hangup_cause: str | None = None
        self.hangup_side: HangupSide | None = None
        self.sip_status: int | None = None

    @staticmethod
    def id_for(sip_call_id: str) -> UUID:
        """The call's id, derived from its SIP Call-ID so a retransmitted
        INVITE names the same call."""
        return uuid5(CALL_ID_NAMESPACE, non_empty("sip_call_id", sip_call_id))

    @classmethod
    def initiate(cls, *, caller: str, callee: str, direction: Direction, trunk: str | None,
                 sip_call_id: str, occurred_at: datetime,
                 tenant: str = DEFAULT_TENANT) -> Call:
        """A new call of ``tenant``: the tenant of the number or trunk it arrived on."""
        if trunk is not None:
            non_empty("trunk", trunk)
        return cls._create(
            cls.Initiated,
            id=cls.id_for(sip_call_id),
            tenant=check_tenant(tenant),
            caller=non_empty("caller", caller),
            callee=non_empty("callee", callee),
            direction=enum_member(Direction, direction).value,
            trunk=trunk,
            sip_call_id=sip_call_id,
            occurred_at=utc_instant(occurred_at),
        )

    def route(self, target: str, occurred_at: datetime) -> None:
        self._require(BEFORE_ANSWER, "route")
        self._trigger(self.Routed, occurred_at, target=non_empty("target", target))

    def ring(self, occurred_at: datetime) -> None:
        if self.status is CallStatus.RINGING:
            return  # repeated 180, or 180 then 183
        self._require({CallStatus.INITIATED, CallStatus.ROUTED}, "ring")
        self._trigger(self.Ringing, occurred_at)

    def answer(self, occurred_at: datetime) -> None:
        if self.status in CONNECTED:
            return  # retransmitted 200 OK
        self._require(BEFORE_ANSWER, "answer")
        self._trigger(self.Answered, occurred_at)

    def hold(self, occurred_at: datetime, side: HoldSide = HoldSide.UNKNOWN) -> None:
        """The ``side``'s phone put the call on hold (a repeated hold is a no-op)."""
        if self.status is CallStatus.HELD:
            return
        self._require({CallStatus.ANSWERED}, "hold")
        self._trigger(self.Held, occurred_at, side=enum_member(HoldSide, side).value)

    def resume(self, occurred_at: datetime, side: HoldSide = HoldSide.UNKNOWN) -> None:
        if self.status is CallStatus.ANSWERED:
            return
        self._require({CallStatus.HELD}, "resume")
        self._trigger(self.Resumed, occurred_at, side=enum_member(HoldSide, side).value)

    def transfer(self, kind: TransferKind, target: str, occurred_at: datetime) -> None:
        self._require(CONNECTED, "transfer")
        self._trigger(
            self.Transferred,
            occurred_at,
            kind=enum_member(TransferKind, kind).value,
            target=non_empty("target", target),
        )

    def record_media_quality(self, *, mos: float, jitter_ms: float, loss_pct: float,
                             rtt_ms: float | None, occurred_at: datetime) -> None:
        """The media statistics of a connected call; the latest report wins and
        a report equal to the current one is a no-op (a resent sample)."""
        self._require(CONNECTED, "record media quality of")
        quality = MediaQuality.checked(mos, jitter_ms, loss_pct, rtt_ms)
        if quality == self.media_quality:
            return
        self._trigger(self.MediaQualityRecorded, occurred_at, **quality._asdict())

    def enter_queue(self, queue: str, occurred_at: datetime) -> None:
        """The call waits in `queue` (first entry, or transferred to it by an agent).

        Answering the caller's leg to play music on hold or a prompt is not an
        answer: only the agent's (or callee's) 200 OK is `answer`.
        """
        self._require(BEFORE_ANSWER | CONNECTED, "queue")
        if queue == self.queue and self.status in BEFORE_ANSWER:
            return  # the same queue entry reported twice
        self._trigger(self.Queued, occurred_at, queue=non_empty("queue", queue))

    def connect_agent(self, agent: str, occurred_at: datetime) -> None:
        """An agent's device took the call (it may be the second agent after a transfer)."""
        self._require(BEFORE_ANSWER | CONNECTED, "connect an agent to")
        if self.agents and self.agents[-1] == agent:
            return
        self._trigger(self.AgentConnected, occurred_at, agent=non_empty("agent", agent))

    def end(self, *, disposition: Disposition, hangup_cause: str, hangup_side: HangupSide,
            sip_status: int | None, occurred_at: datetime) -> None:
        if self.status is CallStatus.ENDED:
            return  # second BYE, or BYE crossing a CANCEL
        checked = enum_member(Disposition, disposition)
        self._check_disposition_agrees(checked)
        self._trigger(
            self.Ended,
            occurred_at,
            disposition=checked.value,
            hangup_cause=non_empty("hangup_cause", hangup_cause),
            hangup_side=enum_member(HangupSide, hangup_side).value,
            sip_status=checked_sip_status(sip_status),
        )

    @property
    def was_answered(self) -> bool:
        return self.answered_at is not None

    def close_hold(self, until: datetime) -> None:
        """Add the open hold period, if any, to the hold total (used by apply)."""
        if self.hold_started_at is not None:
            self.hold_total += max(ZERO, until - self.hold_started_at)
            self.hold_started_at = None

    def _require(self, allowed: frozenset[CallStatus] | set[CallStatus], action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(f"cannot {action} call {self.id}: it is {self.status}")

    def _check_disposition_agrees(self, disposition: Disposition) -> None:
        if disposition is Disposition.ANSWERED and not self.was_answered:
            raise IllegalTransition(f"call {self.id} ends as answered but was never answered")
        if disposition in UNANSWERED_DISPOSITIONS and self.was_answered:
            raise IllegalTransition(f"call {self.id} was answered, it cannot end as {disposition}")

    def _trigger(self, event_class: type[Call.Event], occurred_at: datetime,
                 **facts: Any) -> None:
        at = utc_instant(occurred_at)
        if at < self.initiated_at:
            raise InvalidValue(f"occurred_at {at} precedes the call's start {self.initiated_at}")
        self.trigger_event(event_class, occurred_at=at, **facts)

