"""What a projection commit touched, told to the live feed with its wake-up.

Every write to projection_positions already sends an empty `NOTIFY
dialtone_projections` (migration 0012): "something moved". A runner that knows
what its batch was about sends, in the same transaction, a notification on
`dialtone_projections_touched` whose payload says which part of which source the commit
covers and the ids it touched: the aggregates of its events (queues, agents,
calls) and every id their data names (the call a queue offered, the agent it
rang). An API process (api/live/stream.py) then re-reads the queues, agents and
calls of those ids only, instead of the tenant's whole view.

The payload is a hint the reader checks: it covers `(after, upto]` of
`source`, and a reader uses it only when the payloads it holds cover every
position row that moved since its last read; anything else (a writer that
sends none, a lost or late notification) makes it read everything. `ids` is
None ("everything") when the batch holds a kind whose effect on the view is not
tied to ids, or when the ids do not fit PostgreSQL's 8,000-byte payload.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from projections import positions
from projections.envelope import EventEnvelope
from projections.registry import ProjectionGroup

# A channel of its own beside migration 0012's `dialtone_projections` (which each
# commit wakes once: its payload is always empty, and PostgreSQL folds identical
# notifications of a transaction into one); api/live/notify.py listens on both.
CHANNEL = "dialtone_projections_touched"
# PostgreSQL refuses a payload of 8,000 bytes or more; leave room for the rest of it.
MAX_PAYLOAD = 7900
# The kinds whose every effect on the live view follows the ids they carry: a queue
# event changes that queue's rows (and names its call and agent), an agent's its
# own, a call's its own. Any other kind a runner applies means "everything".
BY_ID = frozenset({"queue", "agent", "call"})


@dataclass(frozen=True)
class Touched:
    source: str
    after: int  # the positions of `source` this commit covers: (after, upto]
    upto: int
    ids: frozenset[UUID] | None  # None: anything may have changed

    def payload(self) -> str:
        """The notification's text, `ids` left out (None) if it would not fit."""
        body: dict[str, Any] = {"s": self.source, "a": self.after, "u": self.upto,
                                "ids": None if self.ids is None else sorted(map(str, self.ids))}
        text = json.dumps(body, separators=(",", ":"))
        if len(text.encode()) <= MAX_PAYLOAD:
            return text
        return json.dumps({**body, "ids": None}, separators=(",", ":"))

    @classmethod
    def parse(cls, payload: str) -> Touched | None:
        """The payload's `Touched`; None for the trigger's empty one (or any other)."""
        if not payload:
            return None
        try:
            body = json.loads(payload)
            ids = body["ids"]
            return cls(str(body["s"]), int(body["a"]), int(body["u"]),
                       None if ids is None else frozenset(UUID(i) for i in ids))
        except (ValueError, KeyError, TypeError):
            return None


def touched_ids(envelopes: Iterable[EventEnvelope],
                applied: frozenset[str]) -> frozenset[UUID] | None:
    """The ids a batch touched (None: it holds a kind applied here, `applied`,
    whose effect is not tied to ids). Kinds no group applies change nothing."""
    ids: set[UUID] = set()
    for envelope in envelopes:
        if envelope.kind not in applied:
            continue
        if envelope.kind not in BY_ID:
            return None
        ids.add(envelope.subject)
        _collect(envelope.data, ids)
    return frozenset(ids)


def _collect(value: Any, ids: set[UUID]) -> None:
    if isinstance(value, UUID):
        ids.add(value)
    elif isinstance(value, str):
        if len(value) == 36:  # the canonical text form; anything else is not an id
            with contextlib.suppress(ValueError):
                ids.add(UUID(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, ids)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, ids)


def notify(conn: Connection[Any], source: str, after: int,
           envelopes: Sequence[EventEnvelope], applied: frozenset[str]) -> None:
    """In the caller's transaction (sent at its commit, with the trigger's empty
    one): what `envelopes`, the positions of `source` after `after`, touched."""
    if not envelopes:
        return
    upto = max(e.position for e in envelopes)
    touched = Touched(source, after, upto, touched_ids(envelopes, applied))
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, touched.payload()))


def notify_batch(conn: Connection[Any], groups: Sequence[ProjectionGroup],
                 envelopes: Sequence[EventEnvelope], source: str) -> None:
    """`notify` for a writer that does not read its positions before a batch (the
    Faust worker): the batch covers `source` from where its groups' positions are.
    On an autocommit connection it is sent at once, before the batch's commit: the
    feed then finds nothing moved yet, and reads in part when the commit comes."""
    if not envelopes or not groups:
        return
    after = min(positions.read(conn, group.names[0], source) for group in groups)
    notify(conn, source, after, envelopes, frozenset().union(*(g.kinds for g in groups)))
