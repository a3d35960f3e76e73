"""Domain commands the B2BUA issues, as plain values queued for the storage thread.

SIP handling never calls the application service directly (it must never wait
on the database): it builds one of these values and puts it on the command
queue; the storage thread later calls ``apply`` on the real service inside a
group-commit batch. Each value carries the protocol fact's own timestamp, so a
command applied late (after a database outage) still records when it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.call_control import AuditLink
from domain.addressing import DEFAULT_TENANT
from domain.call import Call, Direction, Disposition, HangupSide, SupervisionMode, TransferKind


class CallCommands(Protocol):
    """The part of application.calls.CallService the B2BUA drives."""

    def initiate_call(self, *, caller: str, callee: str, direction: Direction,
                      trunk: str | None, sip_call_id: str, occurred_at: datetime,
                      tenant: str = DEFAULT_TENANT) -> UUID: ...
    def route_call(self, call_id: UUID, target: str, occurred_at: datetime) -> None: ...
    def ring_call(self, call_id: UUID, occurred_at: datetime) -> None: ...
    def answer_call(self, call_id: UUID, occurred_at: datetime) -> None: ...
    def hold_call(self, call_id: UUID, occurred_at: datetime) -> None: ...
    def resume_call(self, call_id: UUID, occurred_at: datetime) -> None: ...
    def transfer_call(self, call_id: UUID, kind: TransferKind, target: str,
                      occurred_at: datetime) -> None: ...
    def queue_call(self, call_id: UUID, queue: str, occurred_at: datetime) -> None: ...
    def connect_agent(self, call_id: UUID, agent: str, occurred_at: datetime) -> None: ...
    def attach_recording(self, call_id: UUID, ref: str, duration_s: float,
                         occurred_at: datetime) -> None: ...
    def start_supervision(self, call_id: UUID, supervisor: str, mode: SupervisionMode,
                          occurred_at: datetime) -> None: ...
    def stop_supervision(self, call_id: UUID, supervisor: str, occurred_at: datetime) -> None: ...
    def record_media_quality(self, call_id: UUID, *, mos: float, jitter_ms: float,
                             loss_pct: float, rtt_ms: float | None,
                             occurred_at: datetime) -> None: ...
    def end_call(self, call_id: UUID, *, disposition: Disposition, hangup_cause: str,
                 hangup_side: HangupSide, sip_status: int | None,
                 occurred_at: datetime) -> None: ...


@dataclass(frozen=True)
class Command:
    call_id: UUID
    occurred_at: datetime
    # The API command (a call-control request) this one carries out, if any: its
    # events' positions are added to that command's audit row once stored.
    cause: AuditLink | None = field(default=None, kw_only=True, compare=False, repr=False)

    def apply(self, service: CallCommands) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class InitiateCall(Command):
    caller: str
    callee: str
    direction: Direction
    trunk: str | None
    sip_call_id: str
    tenant: str = DEFAULT_TENANT  # of the number (or trunk) the call arrived on

    @classmethod
    def inbound(cls, *, sip_call_id: str, caller: str, callee: str,
                occurred_at: datetime, trunk: str | None = None,
                tenant: str = DEFAULT_TENANT) -> InitiateCall:
        return cls(Call.id_for(sip_call_id), occurred_at, caller, callee,
                   Direction.INBOUND, trunk, sip_call_id, tenant)

    def apply(self, service: CallCommands) -> None:
        service.initiate_call(caller=self.caller, callee=self.callee, direction=self.direction,
                              trunk=self.trunk, sip_call_id=self.sip_call_id,
                              occurred_at=self.occurred_at, tenant=self.tenant)


@dataclass(frozen=True)
class RouteCall(Command):
    target: str

    def apply(self, service: CallCommands) -> None:
        service.route_call(self.call_id, self.target, self.occurred_at)


@dataclass(frozen=True)
class RingCall(Command):
    def apply(self, service: CallCommands) -> None:
        service.ring_call(self.call_id, self.occurred_at)


@dataclass(frozen=True)
class AnswerCall(Command):
    def apply(self, service: CallCommands) -> None:
        service.answer_call(self.call_id, self.occurred_at)


@dataclass(frozen=True)
class HoldCall(Command):
    def apply(self, service: CallCommands) -> None:
        service.hold_call(self.call_id, self.occurred_at)


@dataclass(frozen=True)
class ResumeCall(Command):
    def apply(self, service: CallCommands) -> None:
        service.resume_call(self.call_id, self.occurred_at)


@dataclass(frozen=True)
class TransferCall(Command):
    kind: TransferKind
    target: str

    def apply(self, service: CallCommands) -> None:
        service.transfer_call(self.call_id, self.kind, self.target, self.occurred_at)


@dataclass(frozen=True)
class QueueCall(Command):
    """The call started waiting in a queue (named by its key)."""

    queue: str

    def apply(self, service: CallCommands) -> None:
        service.queue_call(self.call_id, self.queue, self.occurred_at)


@dataclass(frozen=True)
class ConnectAgent(Command):
    """An agent's device took the call (the agent named by its key)."""

    agent: str

    def apply(self, service: CallCommands) -> None:
        service.connect_agent(self.call_id, self.agent, self.occurred_at)


@dataclass(frozen=True)
class AttachRecording(Command):
    ref: str
    duration_s: float

    def apply(self, service: CallCommands) -> None:
        service.attach_recording(self.call_id, self.ref, self.duration_s, self.occurred_at)


@dataclass(frozen=True)
class StartSupervision(Command):
    supervisor: str
    mode: SupervisionMode

    def apply(self, service: CallCommands) -> None:
        service.start_supervision(self.call_id, self.supervisor, self.mode, self.occurred_at)


@dataclass(frozen=True)
class StopSupervision(Command):
    supervisor: str

    def apply(self, service: CallCommands) -> None:
        service.stop_supervision(self.call_id, self.supervisor, self.occurred_at)


@dataclass(frozen=True)
class RecordMediaQuality(Command):
    mos: float
    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None

    def apply(self, service: CallCommands) -> None:
        service.record_media_quality(self.call_id, mos=self.mos, jitter_ms=self.jitter_ms,
                                     loss_pct=self.loss_pct, rtt_ms=self.rtt_ms,
                                     occurred_at=self.occurred_at)


@dataclass(frozen=True)
class EndCall(Command):
    disposition: Disposition
    hangup_cause: str
    hangup_side: HangupSide
    sip_status: int | None

    def apply(self, service: CallCommands) -> None:
        service.end_call(self.call_id, disposition=self.disposition,
                         hangup_cause=self.hangup_cause, hangup_side=self.hangup_side,
                         sip_status=self.sip_status, occurred_at=self.occurred_at)


class CommandSink(Protocol):
    """Where the SIP side puts commands; must return at once, never block."""

    def put(self, command: Command) -> None: ...
