"""queue_visits and queue_handling for a first pass (a rebuild's or replay's, from the
store in store order): each visit and handling a page opens is folded to its last
state in memory and copied in once, instead of inserted open and then closed by an
update per change (``queue_visits_sql.write``), which were a fifth of PostgreSQL's
work in a from-scratch build (pg_stat_statements over bench.reports' two days).

Only what cannot differ from the SQL is folded here: the changes of a target (a
visit's queue and call, a handling's agent and call) whose first change in the page
opens it, and of which no row in the table is still open (the page's closes would
reach that row too). Every other target's changes go through ``queue_visits_sql.write``
in their order; changes to different targets commute, so splitting them changes
nothing. The fold is the SQL's, statement by statement: an open is ignored if its
row exists, a close reaches every open row of its target (a visit offered before it
left), talk and wrap-up are the differences of the timestamps, at least 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow

from projections import calls, queue_visits_sql, staging
from projections.queue_visits import (
    Change,
    CloseVisit,
    EndWrapUp,
    HandlingEnded,
    OpenHandling,
    OpenVisit,
)

_F8, _TS, _ID = "double precision", "timestamptz", "uuid"
_VISITS = (("queue_id", _ID), ("call_id", _ID), ("offered_at", _TS), ("tenant", "text"),
           ("offered_version", "integer"), ("transferred_in", "boolean"),
           ("short_abandon_s", _F8), ("last_position", "bigint"), ("outcome", "text"),
           ("left_at", _TS), ("wait_s", _F8), ("service_level_s", _F8), ("agent_id", _ID))
_HANDLINGS = (("agent_id", _ID), ("call_id", _ID), ("accepted_at", _TS), ("tenant", "text"),
              ("queue_id", _ID), ("last_position", "bigint"), ("ended_at", _TS),
              ("talk_s", _F8), ("wrap_up_ended_at", _TS), ("wrap_up_s", _F8))
# Targets of the page with a row still open in the table: a visit without an outcome, a
# handling not ended or not wrapped up.
_OPEN_VISITS = """
SELECT DISTINCT v.queue_id, v.call_id FROM unnest(%s::uuid[], %s::uuid[]) AS t(queue_id, call_id)
JOIN queue_visits v USING (queue_id, call_id) WHERE v.outcome IS NULL
"""
_OPEN_HANDLINGS = """
SELECT DISTINCT h.agent_id, h.call_id FROM unnest(%s::uuid[], %s::uuid[]) AS t(agent_id, call_id)
JOIN queue_handling h USING (agent_id, call_id)
WHERE h.ended_at IS NULL OR h.wrap_up_ended_at IS NULL
"""

Target = tuple[str, UUID, UUID]
Row = dict[str, Any]


def write(cur: Cursor[TupleRow], changes: Sequence[Change]) -> None:
    """``queue_visits_sql.write`` for a first pass's page (module docstring)."""
    by_target: dict[Target, list[Change]] = defaultdict(list)
    for c in changes:
        by_target[queue_visits_sql.target(c)].append(c)
    opened = [t for t, cs in by_target.items() if isinstance(cs[0], OpenVisit | OpenHandling)]
    busy = _open_in_table(cur, opened)
    folded = [t for t in opened if t not in busy]
    visits: list[Row] = []
    handlings: list[Row] = []
    for t in folded:
        if t[0] == "visit":
            visits += _visit_rows(by_target.pop(t))
        else:
            handlings += _handling_rows(by_target.pop(t))
    rest = [c for c in changes if queue_visits_sql.target(c) in by_target]
    if rest:
        queue_visits_sql.write(cur, rest)
    staging.copy_into(cur, "queue_visits", _VISITS,
                      ([r[c] for c, _ in _VISITS] for r in visits))
    staging.copy_into(cur, "queue_handling", _HANDLINGS,
                      ([r[c] for c, _ in _HANDLINGS] for r in handlings))
    done = set(folded)
    wrapped = {c.call_id for c in changes if isinstance(c, EndWrapUp | HandlingEnded)
               and _wraps_up(c) and queue_visits_sql.target(c) in done}
    if wrapped:  # after the rows: the CDR's wrap-up, as queue_visits_sql.write copies it
        calls.fill_wrap_up(cur, wrapped)


def _open_in_table(cur: Cursor[TupleRow], targets: Sequence[Target]) -> set[Target]:
    busy: set[Target] = set()
    for kind, query in (("visit", _OPEN_VISITS), ("handling", _OPEN_HANDLINGS)):
        keys = [(a, b) for k, a, b in targets if k == kind]
        if keys:
            cur.execute(query, ([a for a, _ in keys], [b for _, b in keys]))
            busy.update((kind, a, b) for a, b in cur.fetchall())
    return busy


def _wraps_up(c: EndWrapUp | HandlingEnded) -> bool:
    """Whether ``c`` completes a handling's wrap-up."""
    return isinstance(c, EndWrapUp) or not c.wrap_up


def _visit_rows(changes: Sequence[Change]) -> list[Row]:
    rows: dict[datetime, Row] = {}
    for c in changes:
        if isinstance(c, OpenVisit):
            v = c.visit
            rows.setdefault(v.offered_at, {
                "queue_id": v.queue_id, "call_id": v.call_id, "offered_at": v.offered_at,
                "tenant": c.tenant, "offered_version": c.offered_version,
                "transferred_in": v.transferred_in, "short_abandon_s": c.short_abandon_s,
                "last_position": c.position, "outcome": None, "left_at": None,
                "wait_s": None, "service_level_s": None, "agent_id": None})
        elif isinstance(c, CloseVisit):
            for row in rows.values():
                if row["outcome"] is None and row["offered_at"] <= c.left_at:
                    row.update(outcome=c.outcome, left_at=c.left_at, wait_s=c.wait_s,
                               service_level_s=c.service_level_s, agent_id=c.agent_id,
                               last_position=c.position)
    return list(rows.values())


def _handling_rows(changes: Sequence[Change]) -> list[Row]:
    rows: dict[datetime, Row] = {}
    for c in changes:
        if isinstance(c, OpenHandling):
            h = c.handling
            rows.setdefault(h.accepted_at, {
                "agent_id": h.agent_id, "call_id": h.call_id, "accepted_at": h.accepted_at,
                "tenant": c.tenant, "queue_id": h.queue_id, "last_position": c.position,
                "ended_at": None, "talk_s": None, "wrap_up_ended_at": None, "wrap_up_s": None})
        elif isinstance(c, HandlingEnded):
            for row in rows.values():
                if row["ended_at"] is None:
                    row.update(ended_at=c.ended_at,
                               talk_s=_seconds(c.ended_at, row["accepted_at"]),
                               wrap_up_ended_at=None if c.wrap_up else c.ended_at,
                               wrap_up_s=None if c.wrap_up else 0.0, last_position=c.position)
        elif isinstance(c, EndWrapUp):
            for row in rows.values():
                if row["ended_at"] is not None and row["wrap_up_ended_at"] is None:
                    row.update(wrap_up_ended_at=c.at,
                               wrap_up_s=_seconds(c.at, row["ended_at"]),
                               last_position=c.position)
    return list(rows.values())


def _seconds(end: datetime, start: datetime) -> float:
    """``GREATEST(0, extract(epoch FROM end - start))``: both exact to the microsecond,
    then rounded once to a double."""
    return max(0.0, (end - start).total_seconds())
