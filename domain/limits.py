"""Checked numbers for command arguments (durations, counts, priorities)."""

from __future__ import annotations

from uuid import UUID

from domain.errors import InvalidValue

__all__ = ["check_int", "check_seconds", "check_uuid"]


def check_int(name: str, value: int, low: int, high: int) -> int:
    # bool is an int subclass; True as a count is always a caller's bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise InvalidValue(f"{name} must be in {low}..{high}, got {value}")
    return value


def check_seconds(name: str, value: float, low: float, high: float) -> float:
    """A duration in seconds as a float (ints accepted), within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be a number of seconds, got {value!r}")
    if not low <= value <= high:  # also refuses NaN
        raise InvalidValue(f"{name} must be in {low}..{high} seconds, got {value}")
    return float(value)


def check_uuid(name: str, value: UUID) -> UUID:
    if not isinstance(value, UUID):
        raise InvalidValue(f"{name} must be a UUID, got {value!r}")
    return value
