"""Call commands as values: one frozen dataclass per command of the Call aggregate.

A command is written once. Its value type here is what the SIP adapter builds
(``EndCall(call_id, occurred_at, disposition, ...)``), what the storage thread
queues and what ``application.calls.CallService.handle`` runs (load the call,
decide, save); its fields other than ``call_id`` and ``cause`` are the keyword
arguments of the aggregate method it names (``decide``), which holds the rules.
Adding a command is adding its value here and its method (and event) on ``Call``:
defining the value registers it in ``COMMANDS``, from which ``CallService`` makes
its per-command method (``EndCall`` -> ``end_call``); tests/unit/test_call_commands.py
checks that every value matches its method.

Each value carries the protocol fact's own timestamp, so a command applied late
(after a database outage) still records when it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from domain.addressing import DEFAULT_TENANT
from domain.call import Call
from domain.values import (
    Direction,
    Disposition,
    HangupSide,
    HoldSide,
    SupervisionMode,
    TransferKind,
)

__all__ = [
    "COMMANDS", "AnswerCall", "AttachRecording", "CallCommand", "ConnectAgent", "DeleteRecording",
    "EndCall", "HoldCall", "InitiateCall", "QueueCall", "RecordMediaQuality", "ResumeCall",
    "RingCall", "RouteCall", "StartSupervision", "StopSupervision", "StoreRecording",
    "TransferCall", "fact_names",
]

# Fields that say which call and why, not what happened: not passed to the aggregate.
_ENVELOPE = frozenset({"call_id", "cause"})


@dataclass(frozen=True)
class CallCommand:
    """A command on the call ``call_id``, for a fact that happened at ``occurred_at``."""

    call_id: UUID
    occurred_at: datetime
    # The API command (application.call_control.AuditLink, opaque here) this one
    # carries out, if any: the events it stores are added to that command's audit row.
    cause: Hashable | None = field(default=None, kw_only=True, compare=False, repr=False)

    # The Call method that decides this command (an unbound function of Call).
    decide: ClassVar[Callable[..., None]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        COMMANDS.append(cls)  # in definition order; the dataclass decorator keeps the class

    def facts(self) -> dict[str, Any]:
        """The deciding method's keyword arguments: every field but call_id and cause."""
        facts = vars(self).copy()  # the fields only (frozen); a C copy, as cheap as it gets
        del facts["call_id"], facts["cause"]
        return facts

    def apply_to(self, call: Call) -> None:
        """Let the call decide: an event, a silent repeat, or a DomainError."""
        type(self).decide(call, **self.facts())


def fact_names(command: type[CallCommand]) -> tuple[str, ...]:
    """The command's fact fields in declaration order (occurred_at first)."""
    names = _FACT_NAMES.get(command)
    if names is None:  # once per class: a command is handled many times a second
        names = _FACT_NAMES[command] = tuple(
            f.name for f in fields(command) if f.name not in _ENVELOPE)
    return names


_FACT_NAMES: dict[type[CallCommand], tuple[str, ...]] = {}
# Every command value, registered by its definition (CallCommand.__init_subclass__).
COMMANDS: list[type[CallCommand]] = []


@dataclass(frozen=True)
class InitiateCall(CallCommand):
    """A new call (its first INVITE); ``call_id`` is ``Call.id_for(sip_call_id)``."""

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

    def create(self) -> Call:
        """The new call (not yet saved); creating is a class method, not a decision."""
        return Call.initiate(**self.facts())

    def apply_to(self, call: Call) -> None:
        """The call exists already (a retransmitted INVITE): nothing to add."""


@dataclass(frozen=True)
class RouteCall(CallCommand):
    target: str
    decide = Call.route


@dataclass(frozen=True)
class RingCall(CallCommand):
    decide = Call.ring


@dataclass(frozen=True)
class AnswerCall(CallCommand):
    decide = Call.answer


@dataclass(frozen=True)
class HoldCall(CallCommand):
    side: HoldSide = HoldSide.UNKNOWN  # whose phone held (the flow knows its leg)
    decide = Call.hold


@dataclass(frozen=True)
class ResumeCall(CallCommand):
    side: HoldSide = HoldSide.UNKNOWN
    decide = Call.resume


@dataclass(frozen=True)
class TransferCall(CallCommand):
    kind: TransferKind
    target: str
    decide = Call.transfer


@dataclass(frozen=True)
class QueueCall(CallCommand):
    """The call started waiting in a queue (named by its key)."""

    queue: str
    decide = Call.enter_queue


@dataclass(frozen=True)
class ConnectAgent(CallCommand):
    """An agent's device took the call (the agent named by its key)."""

    agent: str
    decide = Call.connect_agent


@dataclass(frozen=True)
class AttachRecording(CallCommand):
    ref: str
    duration_s: float
    decide = Call.attach_recording


@dataclass(frozen=True)
class StoreRecording(CallCommand):
    """The recording was uploaded to object storage (``dialtone recordings``)."""

    bucket: str
    key: str
    size_bytes: int
    sha256: str
    decide = Call.store_recording


@dataclass(frozen=True)
class DeleteRecording(CallCommand):
    """The stored recording was deleted (retention)."""

    bucket: str
    key: str
    reason: str
    decide = Call.delete_recording


@dataclass(frozen=True)
class StartSupervision(CallCommand):
    supervisor: str
    mode: SupervisionMode
    decide = Call.start_supervision


@dataclass(frozen=True)
class StopSupervision(CallCommand):
    supervisor: str
    decide = Call.stop_supervision


@dataclass(frozen=True)
class RecordMediaQuality(CallCommand):
    mos: float
    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None
    decide = Call.record_media_quality


@dataclass(frozen=True)
class EndCall(CallCommand):
    disposition: Disposition
    hangup_cause: str
    hangup_side: HangupSide
    sip_status: int | None
    decide = Call.end
