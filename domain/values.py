"""Value types of the call domain, and the checks of the Call aggregate's values.

The enums are ``StrEnum`` so that a member *is* its string value: events store
plain strings (no custom transcoding needed), and state rebuilt from stored
events compares equal to state built from live commands.
"""

from __future__ import annotations

import math
import re
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


# The statuses a command may find the call in (Call._require).
BEFORE_ANSWER = frozenset({CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING})
CONNECTED = frozenset({CallStatus.ANSWERED, CallStatus.HELD})


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


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MediaQuality(NamedTuple):
    """How the call's audio fared: an E-model MOS estimate (ITU-T G.107) and the
    worst stream's receive jitter, packet loss and round-trip time."""

    mos: float
    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None  # None: no RTCP round trip was measured

    @classmethod
    def checked(cls, mos: float, jitter_ms: float, loss_pct: float,
                rtt_ms: float | None) -> MediaQuality:
        _check_range("mos", mos, 1.0, 5.0)
        _check_range("jitter_ms", jitter_ms, 0.0, math.inf)
        _check_range("loss_pct", loss_pct, 0.0, 100.0)
        if rtt_ms is not None:
            _check_range("rtt_ms", rtt_ms, 0.0, math.inf)
        return cls(float(mos), float(jitter_ms), float(loss_pct),
                   None if rtt_ms is None else float(rtt_ms))


class StoredRecording(NamedTuple):
    """Where a call's recording is in object storage, and what it is (size, digest)."""

    bucket: str
    key: str
    size_bytes: int
    sha256: str

    @classmethod
    def checked(cls, bucket: str, key: str, size_bytes: int, sha256: str) -> StoredRecording:
        for name, text in (("bucket", bucket), ("key", key)):
            if not isinstance(text, str) or not text.strip():
                raise InvalidValue(f"{name} must be a non-empty string, got {text!r}")
        if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 0:
            raise InvalidValue(f"recording size {size_bytes!r} is not a byte count")
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise InvalidValue(f"not a lowercase sha256 hex digest: {sha256!r}")
        return cls(bucket, key, size_bytes, sha256)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidValue(f"{name} must be within [{low}, {high}], got {value!r}")


def checked_sip_status(sip_status: int | None) -> int | None:
    """A final SIP status code (100-699), or None when the call ended without one."""
    if sip_status is None:
        return None
    if isinstance(sip_status, bool) or not isinstance(sip_status, int):
        raise InvalidValue(f"sip_status must be an int or None, got {sip_status!r}")
    if not 100 <= sip_status <= 699:
        raise InvalidValue(f"sip_status {sip_status} is not a SIP status code")
    return sip_status
