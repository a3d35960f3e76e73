"""Checked values of the Call aggregate's facts (kept apart to keep domain/call.py short).

``domain.call`` re-exports ``MediaQuality``: import it from there.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from domain.errors import InvalidValue
from domain.values import CallStatus

__all__ = ["BEFORE_ANSWER", "CONNECTED", "MediaQuality", "StoredRecording", "checked_sip_status"]

# The statuses a command may find the call in (Call._require).
BEFORE_ANSWER = frozenset({CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING})
CONNECTED = frozenset({CallStatus.ANSWERED, CallStatus.HELD})

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
