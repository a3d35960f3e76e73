"""Applies a batch of call-centre events to the call-centre projections in one transaction.

Every call-centre event goes to callcentre_events (deduplicated). Then each
agent and queue the batch touches is folded forward from its stored view by
the contiguous run of its next versions found in callcentre_events: old
versions (duplicates) are never folded again, and events after a missing
one wait there until a later batch fills the gap. The batch's position is
recorded in the same transaction. Appliers that could overlap (a rebuild, a
second worker) are serialised per aggregate with transaction-scoped advisory
locks, so a view is never folded from a stale read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.rows import TupleRow

from projections import (
    agent_state,
    agent_state_intervals,
    agent_view,
    callcentre_events,
    interval_buckets,
    positions,
    queue_live,
    queue_view,
    queue_visits,
    queue_visits_sql,
)
from projections.agent_view import AgentView
from projections.envelope import EventEnvelope
from projections.queue_view import QueueView
from projections.registry import ProjectionGroup

NAMES = (callcentre_events.NAME, agent_state.NAME, agent_state_intervals.NAME, queue_live.NAME,
         *queue_visits.NAMES, *interval_buckets.NAMES)
KINDS = frozenset({"agent", "queue", "ivrmenu", "number", "dialplan"})


def apply_batch(conn: Connection[TupleRow], envelopes: Sequence[EventEnvelope], source: str,
                *, fresh: bool = False) -> int:
    """Apply the batch; return how many agents' and queues' views moved on. ``fresh``: a
    first pass into empty tables, from the store in store order (each event once): the
    events and the new agent periods are copied straight in, not deduplicated
    (callcentre_events.copy_fresh, agent_state_intervals.PeriodLog.write)."""
    if not conn.autocommit:
        raise ValueError("apply_batch needs an autocommit connection")  # see projections.calls
    ours = [e for e in envelopes if e.kind in KINDS]
    with conn.transaction(), conn.cursor() as cur:
        changed = 0
        if ours:
            (callcentre_events.copy_fresh if fresh else callcentre_events.insert)(cur, ours)
            agents = [e for e in ours if e.kind == "agent"]
            queues = [e for e in ours if e.kind == "queue"]
            agent_ids, queue_ids = {e.subject for e in agents}, {e.subject for e in queues}
            _lock(cur, agent_ids | queue_ids)
            touched = interval_buckets.TouchedBuckets()
            changed += _fold_agents(cur, agents, agent_ids, touched, fresh)
            changed += _fold_queues(cur, queues, queue_ids, touched, fresh)
            interval_buckets.mark(cur, touched)  # recomputed by the refresher, not here
        if envelopes:
            positions.record(cur, NAMES, source, max(e.position for e in envelopes))
    return changed


# The reports', timelines' and history's indexes: the apply looks rows up by key, an
# agent's open period (agent_state_intervals_open) and a call's handlings only
# (queue_handling_call, the CDR's wrap-up). Checked: pg_stat_user_indexes over a
# two-day build (bench.reports) counts no scan of these.
DEFERRED_INDEXES = (
    "callcentre_events_position", "callcentre_events_kind", "callcentre_events_tenant_position",
    "callcentre_events_offer_missed", "callcentre_events_occurred_brin",
    "agent_state_intervals_span", "agent_state_intervals_started_brin",
    "agent_state_intervals_tenant_ended",
    "queue_visits_span", "queue_visits_tenant_left", "queue_visits_tenant_offered",
    "queue_handling_visit", "queue_handling_tenant_ended", "queue_handling_tenant_wrap_up",
)

# Per aggregate: an agent's events write its view, periods and handlings, a queue's its
# view, members, waiting calls and visits; the buckets' marks are a set (streams/shards.py).
GROUP = ProjectionGroup(names=NAMES, kinds=KINDS, apply=apply_batch,
                        apply_fresh=partial(apply_batch, fresh=True),
                        settle=interval_buckets.refresh_dirty, per_aggregate=True,
                        settle_fresh=interval_buckets.refresh_fresh,
                        deferred_indexes=frozenset(DEFERRED_INDEXES))


def _lock(cur: Cursor[TupleRow], aggregate_ids: set[UUID]) -> None:
    # Sorted, so two appliers always lock in the same order and cannot deadlock; one
    # statement (its rows locked in that order), not a round trip per aggregate.
    if aggregate_ids:
        cur.execute("SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0)))"
                    " FROM (SELECT unnest(%s::text[]) AS id ORDER BY 1) ids",
                    ([str(i) for i in sorted(aggregate_ids)],))


def _fold_agents(cur: Cursor[TupleRow], batch: Sequence[EventEnvelope], agent_ids: set[UUID],
                 touched: interval_buckets.TouchedBuckets, fresh: bool) -> int:
    if not agent_ids:
        return 0
    views: dict[Any, AgentView] = agent_state.load(cur, agent_ids)
    _mark_duplicates(batch, views, touched)
    pending = callcentre_events.after(cur, _versions(agent_ids, views), batch, fresh=fresh)
    periods = agent_state_intervals.PeriodLog()
    facts: list[queue_visits.Change] = []
    changed: list[AgentView] = []
    for agent_id, events in pending.items():
        view = views.get(agent_id)
        moved = False
        for envelope in _contiguous(events, view.last_version + 1 if view else 1):
            previous: tuple[int, datetime] | None = None
            before = None if view is None else queue_visits.moment(view)
            if view is None:
                view = agent_view.start(envelope)
            else:
                previous = (view.state_version, view.state_since)
                agent_view.advance(view, envelope)
            if previous is None or previous[0] != view.state_version:
                periods.started(view, previous)
            touched.add(view.tenant, envelope.occurred_at)
            facts += queue_visits.agent_changes(before, queue_visits.moment(view), envelope)
            moved = True
        if moved and view is not None:
            changed.append(view)
    agent_state.upsert(cur, changed)
    periods.write(cur, fresh=fresh)
    queue_visits_sql.write(cur, facts)
    return len(changed)



def _mark_duplicates(batch: Sequence[EventEnvelope], views: Mapping[Any, AgentView],
                     touched: interval_buckets.TouchedBuckets) -> None:
    """Mark the buckets of agent events folded before this batch (a redelivery) too. A
    rebuild may have swapped in tables that folded them while this applier lagged
    behind: a hold the calls group projected meanwhile found no finished handling in
    the old tables to mark (projections/calls.py), and its bucket was computed aside
    without it. Marking again only costs a recompute."""
    for e in batch:
        view = views.get(e.subject)
        if view is not None and e.version <= view.last_version:
            touched.add(view.tenant, e.occurred_at)


def _fold_queues(cur: Cursor[TupleRow], batch: Sequence[EventEnvelope], queue_ids: set[UUID],
                 touched: interval_buckets.TouchedBuckets, fresh: bool) -> int:
    if not queue_ids:
        return 0
    views = queue_live.load(cur, queue_ids)
    stored = {queue_id: queue_live.Stored.of(view) for queue_id, view in views.items()}
    pending = callcentre_events.after(cur, _versions(queue_ids, views), batch, fresh=fresh)
    changed: list[QueueView] = []
    facts: list[queue_visits.Change] = []
    for queue_id, events in pending.items():
        view = views.get(queue_id)
        run = _contiguous(events, view.last_version + 1 if view else 1)
        for envelope in run:
            if view is not None:  # the threshold as it stood when the event happened
                facts += queue_visits.queue_changes(view.tenant, view.short_abandon_s, envelope)
            view = queue_view.start(envelope) if view is None else queue_view.advance(
                view, envelope)
            touched.add(view.tenant, envelope.occurred_at)
        if run and view is not None:
            changed.append(view)
    queue_live.save(cur, changed, stored)
    queue_visits_sql.write(cur, facts)
    return len(changed)


def _versions(ids: set[UUID], views: Mapping[Any, Any]) -> dict[UUID, int]:
    return {i: views[i].last_version if i in views else 0 for i in ids}


def _contiguous(events: Sequence[EventEnvelope], first: int) -> list[EventEnvelope]:
    """The events from version ``first`` on, up to the first missing version."""
    run: list[EventEnvelope] = []
    for envelope in events:
        if envelope.version != first + len(run):
            break
        run.append(envelope)
    return run
