"""callcentre_events: every call-centre event, per aggregate in version order.

Insert-only and deduplicated on (aggregate, version). The folding projections
(agent_state, queue_live) read their aggregates' next events from here, so an
event delivered ahead of a missing one simply waits in this table until the
gap is filled, whatever order the batches come in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from domain.addressing import DEFAULT_TENANT
from projections.envelope import EventEnvelope, tenant_of

NAME = "callcentre_events"

# The tenant: a created event names it; a later one takes its aggregate's created
# event's, stored first in the normal order ('default' if it is not: see _RETAG).
_INSERT = """
INSERT INTO callcentre_events (aggregate_id, version, kind, occurred_at, event_id, position,
                               type, data, tenant)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, COALESCE(%s, (
    SELECT c.tenant FROM callcentre_events c WHERE c.aggregate_id = %s AND c.version = 1
    LIMIT 1), 'default'))
ON CONFLICT DO NOTHING
"""
_RETAG = """
UPDATE callcentre_events SET tenant = %s WHERE aggregate_id = %s AND version > 1 AND tenant <> %s
"""

_AFTER = """
SELECT e.event_id, e.type, e.aggregate_id, e.version, e.position, e.occurred_at, e.data
FROM callcentre_events e
JOIN unnest(%s::uuid[], %s::integer[]) AS w(aggregate_id, after) USING (aggregate_id)
WHERE e.version > w.after
ORDER BY e.aggregate_id, e.version
"""


def insert(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope]) -> None:
    envelopes = list(envelopes)
    cur.executemany(_INSERT, [
        (e.subject, e.version, e.kind, e.occurred_at, e.id, e.position, e.type,
         Jsonb(dict(e.data)), tenant_of(e.data) if e.version == 1 else None, e.subject)
        for e in envelopes
    ])
    # Later events that arrived ahead of their created event (out of order).
    created = [(tenant_of(e.data), e.subject) for e in envelopes
               if e.version == 1 and tenant_of(e.data) != DEFAULT_TENANT]
    if created:
        cur.executemany(_RETAG, [(tenant, subject, tenant) for tenant, subject in created])


def after(cur: Cursor[TupleRow], versions: Mapping[UUID, int]) -> dict[UUID, list[EventEnvelope]]:
    """Each aggregate's stored events after the given version, in version order
    (possibly with gaps: the caller folds only the contiguous run)."""
    if not versions:
        return {}
    ids = list(versions)
    cur.execute(_AFTER, (ids, [versions[i] for i in ids]))
    found: dict[UUID, list[EventEnvelope]] = defaultdict(list)
    for event_id, type_, subject, version, position, occurred_at, data in cur.fetchall():
        found[subject].append(EventEnvelope(id=event_id, type=type_, subject=subject,
                                            version=version, position=position,
                                            occurred_at=occurred_at, data=data))
    return found
