"""Applies a batch of Call events to the call projections in one transaction.

Idempotent and order-tolerant: each call's view advances only by its next
version. Duplicates (an old version) change nothing; an event that arrives
ahead of a missing one waits in call_events until the gap is filled, and is
then folded in. The Faust agents and the in-process runner both call this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import TupleRow

from domain.addressing import DEFAULT_TENANT
from projections import call_events, call_live, cdr, interval_buckets, positions
from projections import gaps as gaps_table
from projections.cdr import CallView, advance, start
from projections.envelope import EventEnvelope, tenant_of
from projections.registry import ProjectionGroup

NAMES = (call_events.NAME, cdr.NAME, call_live.NAME)
KIND = "call"


def apply_batch(conn: Connection[TupleRow], envelopes: Sequence[EventEnvelope], source: str) -> int:
    """Apply the batch; return how many calls' views moved on."""
    if not conn.autocommit:
        # Otherwise conn.transaction() would only be a savepoint inside an
        # implicit transaction, and nothing would be committed batch by batch.
        raise ValueError("apply_batch needs an autocommit connection")
    calls = [e for e in envelopes if e.kind == KIND]
    with conn.transaction(), conn.cursor() as cur:
        changed: list[CallView] = []
        if calls:
            views = cdr.load(cur, {e.subject for e in calls})
            call_events.insert(cur, calls, _tenants(calls, views))
            changed = _advance_views(cur, calls, views)
            # A call's first event in this batch, after some of its later ones:
            # those were stored before its tenant was known.
            late = {v.call_id: v.tenant for v in changed
                    if v.call_id not in views and v.tenant != DEFAULT_TENANT}
            call_events.retag(cur, late)
            cdr.upsert(cur, changed)
            call_live.sync(cur, changed)
            mark_held_handlings(cur, calls)
        if envelopes:
            positions.record(cur, NAMES, source, max(e.position for e in envelopes))
    return len(changed)


GROUP = ProjectionGroup(names=NAMES, kinds=frozenset({KIND}), apply=apply_batch)

# The events that start or end a hold: HANDLE_SPLIT (projections/kpi_sql.py) reads them
# from call_events to split a handled call's talk from its hold.
HOLD_EVENTS = frozenset({"held", "resumed", "ended"})
# By call_id: index queue_handling_call (migration 0017).
_HANDLINGS = """
SELECT tenant, wrap_up_ended_at FROM queue_handling WHERE call_id = ANY(%s)
ORDER BY agent_id, call_id, accepted_at FOR SHARE
"""


def mark_held_handlings(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope]) -> int:
    """Mark dirty the interval bucket of each handling (queue_handling, the call-centre
    group's) already bucketed whose call this batch holds, resumes or ends, so the
    refresher recomputes its hold; return how many buckets.

    A handling bucketed later is computed then, with these events in call_events. The
    rows are locked FOR SHARE (all of the call's, filtered after the lock): a wrap-up
    ending concurrently either commits first (the lock waits for it and reads its
    wrap_up_ended_at: we mark) or waits for this commit (its own mark follows ours, and
    the refresh it brings reads our events): neither group's events are left out."""
    call_ids = sorted({e.subject for e in envelopes if e.name in HOLD_EVENTS})
    if not call_ids:
        return 0
    touched = interval_buckets.Touched()
    for tenant, wrap_up_ended_at in cur.execute(_HANDLINGS, (call_ids,)).fetchall():
        if wrap_up_ended_at is not None:
            touched.add(tenant, wrap_up_ended_at)
    return interval_buckets.mark(cur, touched) if touched.times else 0


def _tenants(envelopes: Iterable[EventEnvelope],
             views: Mapping[object, CallView]) -> dict[UUID, str]:
    """Each call's tenant, where known: from its stored view or its first event."""
    known = {e.subject: tenant_of(e.data) for e in envelopes if e.version == 1}
    known.update({v.call_id: v.tenant for v in views.values()})
    return known


def _advance_views(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope],
                   views: Mapping[object, CallView]) -> list[CallView]:
    by_call: dict[UUID, list[EventEnvelope]] = defaultdict(list)
    for envelope in envelopes:
        by_call[envelope.subject].append(envelope)
    views = dict(views)
    gaps = gaps_table.load(cur, by_call.keys())
    changed, still_gapped = [], []
    for call_id, batch in by_call.items():
        view = views.get(call_id)
        before = view.last_version if view else 0
        view, complete = _advance(cur, view, call_id, sorted(batch, key=lambda e: e.version),
                                  had_gap=call_id in gaps)
        if view is not None and view.last_version > before:
            changed.append(view)
        if not complete:
            still_gapped.append(call_id)
    gaps_table.replace(cur, known=gaps & by_call.keys(), gapped=still_gapped)
    return changed


def _advance(
    cur: Cursor[TupleRow],
    view: CallView | None,
    call_id: UUID,
    batch: list[EventEnvelope],
    *,
    had_gap: bool,
) -> tuple[CallView | None, bool]:
    """Fold what can be folded; say whether no later event is left waiting."""
    expected = view.last_version + 1 if view else 1
    pending = [e for e in batch if e.version >= expected]
    if had_gap or not _contiguous_from(pending, expected):
        # Events after a gap wait in call_events (this batch's are inserted
        # already): fold from there, in version order.
        pending = list(call_events.since_version(cur, call_id, expected))
    for envelope in pending:
        if envelope.version != expected:
            return view, False  # still missing an earlier event: the rest waits
        view = start(envelope) if view is None else advance(view, envelope)
        expected += 1
    return view, True


def _contiguous_from(envelopes: Sequence[EventEnvelope], first: int) -> bool:
    return all(e.version == first + i for i, e in enumerate(envelopes))
