"""Checked values of the Call aggregate's facts (kept apart to keep domain/call.py short).

``domain.call`` re-exports ``MediaQuality``: import it from there.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from domain.errors import InvalidValue

__all__ = ["MediaQuality", "checked_sip_status"]


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
