"""Constrained inputs every request schema and query parameter shares.

PostgreSQL `text` and `jsonb` cannot hold U+0000: a NUL that got into an event
would poison every projection that reads it. So no string the API accepts may
contain one: `Text` (bodies) and `text_query` (query parameters) carry a
pattern that refuses it, and patterns of their own (keys, URIs) exclude it too.
The pattern is in the OpenAPI document, so clients and contract tests see the
rule; pydantic enforces it (422) before any command runs.

Instants: `Instant` is an aware date-time whose UTC value Python (and hence
PostgreSQL, whose range is wider) can represent; anything else is 422, never
an overflow deep in a handler.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

NUL_FREE = r"^[^\x00]*$"
# Free text with at least one visible character (names, reasons).
VISIBLE = r"^[^\x00]*[^\x00\s][^\x00]*$"

Text = Annotated[str, StringConstraints(pattern=NUL_FREE)]
VisibleText = Annotated[str, StringConstraints(pattern=VISIBLE)]

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
# The instants the history routes (interval reports, the /at snapshots) take: no
# event is older than the Unix epoch, and local days and rolling windows need room
# on either side of the instant (years 1 and 9999 have none).
HISTORY_FROM = datetime(1970, 1, 1, tzinfo=UTC)
HISTORY_TO = datetime(9000, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant in UTC is outside years 1..9999") from None


# RFC 3339 only: pydantic would also read a number as Unix time (`to=0.5`), a
# value the document's `format: date-time` says is invalid.
_RFC3339_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and _RFC3339_START.match(value):
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError("not an RFC 3339 datetime with an offset, e.g. 2026-01-31T09:00:00Z")


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_utc)]


def minus(instant: datetime, delta: timedelta) -> datetime:
    """``instant - delta``, clamped to the earliest representable instant."""
    try:
        return instant - delta
    except OverflowError:
        return EARLIEST


def plus(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, clamped to the latest representable instant."""
    try:
        return instant + delta
    except OverflowError:
        return LATEST


def text_query(*, max_length: int = 200, **kwargs: Any) -> Any:
    """A free-text query parameter: NUL refused, length bounded."""
    return Query(pattern=NUL_FREE, max_length=max_length, **kwargs)
