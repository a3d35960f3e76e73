"""Keyset paging: an opaque cursor naming the last row a page returned.

The cursor is base64url (no padding) of a small JSON array, so clients treat it
as a token; its content is the sort key `(started_at, call_id)`, which makes the
next page a `WHERE (started_at, call_id) > (...)` index range scan: no OFFSET,
no duplicates or gaps when rows arrive while a client pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID


class InvalidCursor(ValueError):  # noqa: N818 - reads as what the token is
    """The token is not a cursor this API issued."""


@dataclass(frozen=True)
class Keyset:
    started_at: datetime
    call_id: UUID

    def encode(self) -> str:
        raw = json.dumps([self.started_at.isoformat(), str(self.call_id)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str) -> Keyset:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            started_at, call_id = json.loads(raw)
            keyset = cls(datetime.fromisoformat(started_at), UUID(call_id))
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise InvalidCursor("not a cursor returned by this API") from exc
        if keyset.started_at.tzinfo is None or not _in_utc_range(keyset.started_at):
            raise InvalidCursor("not a cursor returned by this API")
        return keyset


def _in_utc_range(instant: datetime) -> bool:
    """Whether the instant's UTC value is a datetime (years 1..9999) PostgreSQL can be given."""
    try:
        instant.astimezone(UTC)
    except OverflowError:
        return False
    return True
