"""call_events: every Call event, for timelines. Insert-only, deduplicated.

And call_projection_gaps, the calls whose events wait here behind a missing
earlier one (``calls_with_gaps``, ``record_gaps``): the calls projection folds them on
from these stored events once the gap is filled (``since_version``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from uuid import UUID

from psycopg import Cursor, sql
from psycopg.rows import TupleRow

from domain.addressing import DEFAULT_TENANT
from projections.envelope import EventEnvelope, jsonb
from projections.staging import copy_merge

NAME = "call_events"

COLUMNS = ("call_id", "version", "occurred_at", "event_id", "position", "type", "data",
           "tenant")

_SELECT_FROM_VERSION = """
SELECT event_id, type, call_id, version, position, occurred_at, data
FROM call_events WHERE call_id = %s AND version >= %s ORDER BY version
"""


def insert(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope],
           tenants: Mapping[UUID, str]) -> None:
    """Insert the events not stored yet (inside the caller's transaction), each
    with its call's tenant (``tenants``; ``default`` while unknown: see ``retag``)."""
    rows = ((e.subject, e.version, e.occurred_at, e.id, e.position, e.type, jsonb(e.data),
             tenants.get(e.subject, DEFAULT_TENANT)) for e in envelopes)
    copy_merge(cur, NAME, COLUMNS, rows, sql.SQL("ON CONFLICT DO NOTHING"))


def retag(cur: Cursor[TupleRow], tenants: Mapping[UUID, str]) -> None:
    """Give calls' stored events their tenant: events that arrived ahead of their
    call's first event (out of order) were stored before the tenant was known."""
    cur.executemany("UPDATE call_events SET tenant = %s WHERE call_id = %s AND tenant <> %s",
                    [(tenant, call_id, tenant) for call_id, tenant in tenants.items()])


def since_version(cur: Cursor[TupleRow], call_id: UUID, version: int) -> Sequence[EventEnvelope]:
    """The call's stored events from `version` on, in order (to close a gap)."""
    cur.execute(_SELECT_FROM_VERSION, (call_id, version))
    return [
        EventEnvelope(id=event_id, type=type_, subject=subject, version=ver, position=pos,
                      occurred_at=occurred_at, data=data)
        for event_id, type_, subject, ver, pos, occurred_at, data in cur.fetchall()
    ]


def calls_with_gaps(cur: Cursor[TupleRow], call_ids: Collection[object]) -> set[object]:
    """Which of the calls had a gap when their last batch was applied."""
    cur.execute("SELECT call_id FROM call_projection_gaps WHERE call_id = ANY(%s)",
                (list(call_ids),))
    return {row[0] for row in cur.fetchall()}


def record_gaps(cur: Cursor[TupleRow], *, known: Collection[object],
                gapped: Collection[object]) -> None:
    """Record the calls still gapped; forget the known ones whose gap closed."""
    still = set(gapped)
    closed = [call_id for call_id in known if call_id not in still]
    if closed:
        cur.execute("DELETE FROM call_projection_gaps WHERE call_id = ANY(%s)", (closed,))
    if gapped:
        cur.executemany("INSERT INTO call_projection_gaps (call_id) VALUES (%s) "
                        "ON CONFLICT DO NOTHING", [(c,) for c in gapped])
