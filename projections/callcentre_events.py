"""callcentre_events: every call-centre event, per aggregate in version order.

Insert-only and deduplicated on (aggregate, version). The folding projections
(agent_state, queue_live) read their aggregates' next events from here, so an
event delivered ahead of a missing one simply waits in this table until the
gap is filled, whatever order the batches come in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow

from domain.addressing import DEFAULT_TENANT
from projections import staging
from projections.envelope import EventEnvelope, jsonb, tenant_of

NAME = "callcentre_events"

# The batch, staged (COPY) for one INSERT ... SELECT: a statement per event was most of
# a from-scratch build's time here (bench.reports).
_STAGE = "callcentre_events_in"
_STAGE_COLUMNS = (("seq", "integer"), ("aggregate_id", "uuid"), ("version", "integer"),
                  ("kind", "text"), ("occurred_at", "timestamptz"), ("event_id", "uuid"),
                  ("position", "bigint"), ("type", "text"), ("data", "jsonb"), ("tenant", "text"))
# The tenant: a created event names it; a later one takes its aggregate's created
# event's: stored before, or in this batch ('default' if neither: see _RETAG). In
# batch order, so that of two copies of one event in a batch the first is kept.
_INSERT = """
INSERT INTO callcentre_events (aggregate_id, version, kind, occurred_at, event_id, position,
                               type, data, tenant)
SELECT s.aggregate_id, s.version, s.kind, s.occurred_at, s.event_id, s.position, s.type, s.data,
       COALESCE(s.tenant,
                (SELECT c.tenant FROM callcentre_events c
                 WHERE c.aggregate_id = s.aggregate_id AND c.version = 1 LIMIT 1),
                f.tenant, 'default')
FROM callcentre_events_in s
LEFT JOIN (SELECT DISTINCT ON (aggregate_id) aggregate_id, tenant FROM callcentre_events_in
           WHERE version = 1) f ON f.aggregate_id = s.aggregate_id
ORDER BY s.seq
ON CONFLICT DO NOTHING
"""
# Later events stored before their created event (out of order, an earlier batch).
_RETAG = """
UPDATE callcentre_events c SET tenant = s.tenant
FROM callcentre_events_in s
WHERE s.version = 1 AND s.tenant <> 'default' AND c.aggregate_id = s.aggregate_id
  AND c.version > 1 AND c.tenant <> s.tenant
"""

# Which events are stored after each version. The batch's own are not read back (their
# data decoded again was a tenth of a from-scratch build), nor even listed: where the
# batch holds an aggregate's next versions without a hole, only the events stored
# beyond that run are asked for (an earlier batch's, waiting for this one to fill their
# gap), which is almost always none (listing the batch's own keys was a tenth again).
# One index range per aggregate (OFFSET 0 keeps the subquery from being flattened
# into a join): as a join, the planner chose a merge join that scanned the whole
# table's index for every batch, so a from-scratch build slowed as the table grew.
_AFTER = """
SELECT w.aggregate_id, e.version, e.occurred_at
FROM unnest(%s::uuid[], %s::integer[]) AS w(aggregate_id, after)
CROSS JOIN LATERAL (SELECT c.version, c.occurred_at FROM callcentre_events c
                    WHERE c.aggregate_id = w.aggregate_id AND c.version > w.after
                    OFFSET 0) e
ORDER BY w.aggregate_id, e.version
"""
_READ = """
SELECT e.event_id, e.type, e.aggregate_id, e.version, e.position, e.occurred_at, e.data
FROM callcentre_events e
JOIN unnest(%s::uuid[], %s::integer[], %s::timestamptz[]) AS w(aggregate_id, version, occurred_at)
  USING (aggregate_id, version, occurred_at)
"""


def insert(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope]) -> None:
    envelopes = list(envelopes)
    if len(envelopes) < staging.SET_WISE_FROM:
        _insert_rows(cur, envelopes)
        return
    rows = ((n, e.subject, e.version, e.kind, e.occurred_at, e.id, e.position, e.type,
             jsonb(e.data), tenant_of(e.data) if e.version == 1 else None)
            for n, e in enumerate(envelopes))
    staging.stage(cur, _STAGE, _STAGE_COLUMNS, rows, analyze=False)  # hashed, not probed
    cur.execute(_INSERT)
    cur.execute(_RETAG)
    staging.unstage(cur, _STAGE)


def copy_fresh(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope]) -> None:
    """``insert`` for a first pass into empty tables (a rebuild's or replay's, from the
    store in store order): the store holds each event once, and an aggregate's created
    event before its others, so a page is copied straight into the table, without the
    stage and its deduplicating INSERT ... SELECT (a sixth of PostgreSQL's time in a
    from-scratch build: pg_stat_statements over bench.reports' two days). An event
    copied twice fails the copy on the key instead of being dropped. The tenant, as
    ``insert`` gives it: a created event's own, else its aggregate's created event's
    (stored by an earlier page, or in this one), else 'default' (a replay's cut-off can
    leave the created event out). No retagging: no later event can be stored before
    its created event here."""
    envelopes = list(envelopes)
    if len(envelopes) < staging.SET_WISE_FROM:
        insert(cur, envelopes)
        return
    tenants = {e.subject: tenant_of(e.data) for e in envelopes if e.version == 1}
    later = list({e.subject for e in envelopes if e.subject not in tenants})
    if later:
        cur.execute("SELECT aggregate_id, tenant FROM callcentre_events"
                    " WHERE aggregate_id = ANY(%s) AND version = 1", (later,))
        tenants.update(cur.fetchall())
    staging.copy_into(cur, NAME, _STAGE_COLUMNS[1:], (  # seq orders the stage only
        (e.subject, e.version, e.kind, e.occurred_at, e.id, e.position, e.type,
         jsonb(e.data), tenants.get(e.subject, DEFAULT_TENANT)) for e in envelopes))


# A few events: a statement each, in order (a later event finds its created event
# stored by the statement before, or is retagged when that comes).
_INSERT_ROW = """
INSERT INTO callcentre_events (aggregate_id, version, kind, occurred_at, event_id, position,
                               type, data, tenant)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, COALESCE(%s, (
    SELECT c.tenant FROM callcentre_events c WHERE c.aggregate_id = %s AND c.version = 1
    LIMIT 1), 'default'))
ON CONFLICT DO NOTHING
"""
_RETAG_ROW = """
UPDATE callcentre_events SET tenant = %s WHERE aggregate_id = %s AND version > 1 AND tenant <> %s
"""


def _insert_rows(cur: Cursor[TupleRow], envelopes: Sequence[EventEnvelope]) -> None:
    cur.executemany(_INSERT_ROW, [
        (e.subject, e.version, e.kind, e.occurred_at, e.id, e.position, e.type,
         jsonb(e.data), tenant_of(e.data) if e.version == 1 else None, e.subject)
        for e in envelopes
    ])
    created = [(tenant_of(e.data), e.subject) for e in envelopes
               if e.version == 1 and tenant_of(e.data) != DEFAULT_TENANT]
    if created:
        cur.executemany(_RETAG_ROW, [(tenant, subject, tenant) for tenant, subject in created])


def after(cur: Cursor[TupleRow], versions: Mapping[UUID, int],
          batch: Sequence[EventEnvelope] = (), *, fresh: bool = False,
          ) -> dict[UUID, list[EventEnvelope]]:
    """Each aggregate's stored events after the given version, in version order
    (possibly with gaps: the caller folds only the contiguous run). ``batch``: the
    events just stored (``insert``), taken as they are instead of read back: where
    it holds an aggregate's versions from the next one on without a hole, those are
    its events for them (the first of two copies), and only later ones are read.
    ``fresh``: a first pass (``copy_fresh``), which reads the store once in store
    order, so an aggregate's versions come in order and no earlier batch left one
    waiting for this one: the batch's runs are all there is, and nothing is read."""
    if not versions:
        return {}
    runs = _runs(versions, batch)
    if fresh:
        return runs
    ids = list(versions)
    beyond = [versions[i] + len(runs.get(i, ())) for i in ids]
    cur.execute(_AFTER, (ids, beyond))
    keys: list[tuple[UUID, int, datetime]] = cur.fetchall()
    known: dict[tuple[UUID, int, datetime], EventEnvelope] = {}
    if keys:  # almost never: an earlier batch's events waiting for this one
        known = {(e.subject, e.version, e.occurred_at): e
                 for e in reversed(batch)}  # reversed: the first copy wins
    missing = [key for key in keys if key not in known]
    if missing:
        cur.execute(_READ, tuple(map(list, zip(*missing, strict=True))))
        for event_id, type_, subject, version, position, occurred_at, data in cur.fetchall():
            known[(subject, version, occurred_at)] = EventEnvelope(
                id=event_id, type=type_, subject=subject, version=version, position=position,
                occurred_at=occurred_at, data=data)
    found: dict[UUID, list[EventEnvelope]] = defaultdict(list)
    for aggregate_id, run in runs.items():
        found[aggregate_id].extend(run)
    for key in keys:
        found[key[0]].append(known[key])
    return found


def _runs(versions: Mapping[UUID, int],
          batch: Sequence[EventEnvelope]) -> dict[UUID, list[EventEnvelope]]:
    """Per aggregate of ``versions``, the batch's events for its next versions, from
    the one after ``versions[aggregate]`` up to the first the batch lacks."""
    by_version: dict[UUID, dict[int, EventEnvelope]] = defaultdict(dict)
    for e in batch:
        if e.subject in versions:
            by_version[e.subject].setdefault(e.version, e)
    runs: dict[UUID, list[EventEnvelope]] = {}
    for aggregate_id, events in by_version.items():
        run: list[EventEnvelope] = []
        version = versions[aggregate_id] + 1
        while (event := events.get(version)) is not None:
            run.append(event)
            version += 1
        if run:
            runs[aggregate_id] = run
    return runs
