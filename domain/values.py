"""Value types of the call domain.

The enums are ``StrEnum`` so that a member *is* its string value: events store
plain strings (no custom transcoding needed), and state rebuilt from stored
events compares equal to state built from live commands.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeVar

from domain.errors import InvalidValue


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Disposition(StrEnum):
    """How a call ended, as a CDR records it."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


# Dispositions that say the call was never answered.
UNANSWERED_DISPOSITIONS = frozenset(Disposition) - {Disposition.ANSWERED}


class HangupSide(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    SYSTEM = "system"


class HoldSide(StrEnum):
    """Whose phone put the call on hold (or took it off): the caller's or the
    callee's (an agent's, also when it consults for an attended transfer).
    ``unknown``: not said (holds stored before the side was recorded)."""

    CALLER = "caller"
    CALLEE = "callee"
    UNKNOWN = "unknown"


class TransferKind(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


class SupervisionMode(StrEnum):
    """How a supervisor joins a live call."""

    MONITOR = "monitor"  # hears both parties, heard by nobody
    WHISPER = "whisper"  # hears both, heard by the agent only
    BARGE = "barge"  # hears both, heard by both


class CallStatus(StrEnum):
    INITIATED = "initiated"
    ROUTED = "routed"
    RINGING = "ringing"
    ANSWERED = "answered"
    HELD = "held"
    ENDED = "ended"


class Transfer(NamedTuple):
    """One transfer of a call: a plain tuple ``(kind, target, at)``."""

    kind: TransferKind
    target: str
    at: datetime


ZERO = timedelta(0)


def utc_instant(value: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused because their
    meaning depends on the adapter's local clock setting."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"occurred_at must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def non_empty(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{name} must be a non-empty string, got {value!r}")
    return value


E = TypeVar("E", bound=StrEnum)


def enum_member(kind: type[E], value: str) -> E:
    """``kind(value)``, failing with InvalidValue instead of ValueError."""
    try:
        return kind(value)
    except ValueError:
        raise InvalidValue(f"{value!r} is not a {kind.__name__}") from None
