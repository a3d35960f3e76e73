"""queue_visits and queue_handling in SQL: the row changes of ``projections.queue_visits``
(its fold) applied to the tables, one statement per change for a live batch, set-wise
for a page (a rebuild's, a large catch-up), where a row opened and closed in the page
is inserted once, as its close leaves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow

from projections import calls, staging
from projections.queue_visits import (
    Change,
    CloseVisit,
    EndWrapUp,
    HandlingEnded,
    OpenHandling,
    OpenVisit,
)


class ClosedVisit(NamedTuple):
    """A visit opened and closed in one batch, written as one row (see ``_merged``)."""

    opened: OpenVisit
    closed: CloseVisit


class EndedHandling(NamedTuple):
    """A handling opened and ended in one batch (and its wrap-up ended, if it was in
    it too), written as one row (see ``_merged``)."""

    opened: OpenHandling
    ended: HandlingEnded
    wrap_up: EndWrapUp | None


Written = Change | ClosedVisit | EndedHandling
Target = tuple[str, UUID, UUID]

# -- SQL -----------------------------------------------------------------------------------
#
# Set-wise: the changes are staged (COPY) and applied with one statement per kind of
# change and round. A change acts on its target's rows only (a visit's (queue, call), a
# handling's (agent, call)), so changes to different targets commute; those to one
# target (an open, then its close) are applied in order: round n holds each target's
# n-th change of the batch. A statement per change was most of the group's apply in a
# from-scratch build (bench.reports); a batch needs about three rounds.

_F8, _TS, _ID = "double precision", "timestamptz", "uuid"
_STAGES: dict[type, tuple[str, tuple[tuple[str, str], ...]]] = {
    OpenVisit: ("visit_open_in", (
        ("round", "integer"), ("queue_id", _ID), ("call_id", _ID), ("offered_at", _TS),
        ("tenant", "text"), ("offered_version", "integer"), ("transferred_in", "boolean"),
        ("short_abandon_s", _F8), ("position", "bigint"))),
    CloseVisit: ("visit_close_in", (
        ("round", "integer"), ("queue_id", _ID), ("call_id", _ID), ("outcome", "text"),
        ("left_at", _TS), ("wait_s", _F8), ("service_level_s", _F8), ("agent_id", _ID),
        ("position", "bigint"))),
    OpenHandling: ("handling_open_in", (
        ("round", "integer"), ("agent_id", _ID), ("call_id", _ID), ("accepted_at", _TS),
        ("tenant", "text"), ("queue_id", _ID), ("position", "bigint"))),
    HandlingEnded: ("handling_end_in", (
        ("round", "integer"), ("agent_id", _ID), ("call_id", _ID), ("at", _TS),
        ("wrap", "boolean"), ("position", "bigint"))),
    EndWrapUp: ("wrap_up_end_in", (
        ("round", "integer"), ("agent_id", _ID), ("call_id", _ID), ("at", _TS),
        ("position", "bigint"))),
    ClosedVisit: ("visit_done_in", (
        ("round", "integer"), ("queue_id", _ID), ("call_id", _ID), ("offered_at", _TS),
        ("tenant", "text"), ("offered_version", "integer"), ("transferred_in", "boolean"),
        ("short_abandon_s", _F8), ("outcome", "text"), ("left_at", _TS), ("wait_s", _F8),
        ("service_level_s", _F8), ("agent_id", _ID), ("position", "bigint"))),
    EndedHandling: ("handling_done_in", (
        ("round", "integer"), ("agent_id", _ID), ("call_id", _ID), ("accepted_at", _TS),
        ("tenant", "text"), ("queue_id", _ID), ("ended_at", _TS), ("wrap", "boolean"),
        ("wrap_up_at", _TS), ("position", "bigint"))),
}
# Each statement takes the round's rows of its stage (%s: the round).
_STATEMENTS: dict[type, str] = {
    OpenVisit: """
INSERT INTO queue_visits (queue_id, call_id, offered_at, tenant, offered_version, transferred_in,
                          short_abandon_s, last_position)
SELECT queue_id, call_id, offered_at, tenant, offered_version, transferred_in, short_abandon_s,
       position
FROM visit_open_in WHERE round = %s ON CONFLICT DO NOTHING
""",
    CloseVisit: """
UPDATE queue_visits v SET outcome = s.outcome, left_at = s.left_at, wait_s = s.wait_s,
                          service_level_s = s.service_level_s, agent_id = s.agent_id,
                          last_position = s.position
FROM visit_close_in s
WHERE s.round = %s AND v.queue_id = s.queue_id AND v.call_id = s.call_id AND v.outcome IS NULL
  AND v.offered_at <= s.left_at
""",
    OpenHandling: """
INSERT INTO queue_handling (agent_id, call_id, accepted_at, tenant, queue_id, last_position)
SELECT agent_id, call_id, accepted_at, tenant, queue_id, position
FROM handling_open_in WHERE round = %s ON CONFLICT DO NOTHING
""",
    HandlingEnded: """
UPDATE queue_handling h
SET ended_at = s.at, talk_s = GREATEST(0, extract(epoch FROM s.at - h.accepted_at)),
    wrap_up_ended_at = CASE WHEN s.wrap THEN NULL ELSE s.at END,
    wrap_up_s = CASE WHEN s.wrap THEN NULL ELSE 0 END, last_position = s.position
FROM handling_end_in s
WHERE s.round = %s AND h.agent_id = s.agent_id AND h.call_id = s.call_id AND h.ended_at IS NULL
""",
    EndWrapUp: """
UPDATE queue_handling h
SET wrap_up_ended_at = s.at, wrap_up_s = GREATEST(0, extract(epoch FROM s.at - h.ended_at)),
    last_position = s.position
FROM wrap_up_end_in s
WHERE s.round = %s AND h.agent_id = s.agent_id AND h.call_id = s.call_id
  AND h.ended_at IS NOT NULL AND h.wrap_up_ended_at IS NULL
""",
    # The row the open, then the close, would leave (the same columns as set above).
    ClosedVisit: """
INSERT INTO queue_visits (queue_id, call_id, offered_at, tenant, offered_version, transferred_in,
                          short_abandon_s, outcome, left_at, wait_s, service_level_s, agent_id,
                          last_position)
SELECT queue_id, call_id, offered_at, tenant, offered_version, transferred_in, short_abandon_s,
       outcome, left_at, wait_s, service_level_s, agent_id, position
FROM visit_done_in WHERE round = %s ON CONFLICT DO NOTHING
""",
    # The row the open, the end and the wrap-up's end would leave (the same expressions).
    EndedHandling: """
INSERT INTO queue_handling (agent_id, call_id, accepted_at, tenant, queue_id, ended_at, talk_s,
                            wrap_up_ended_at, wrap_up_s, last_position)
SELECT agent_id, call_id, accepted_at, tenant, queue_id, ended_at,
       GREATEST(0, extract(epoch FROM ended_at - accepted_at)),
       CASE WHEN wrap THEN wrap_up_at ELSE ended_at END,
       CASE WHEN NOT wrap THEN 0 WHEN wrap_up_at IS NOT NULL
            THEN GREATEST(0, extract(epoch FROM wrap_up_at - ended_at)) END,
       position
FROM handling_done_in WHERE round = %s ON CONFLICT DO NOTHING
""",
}


def write(cur: Cursor[TupleRow], changes: Sequence[Change]) -> None:
    """Apply the changes as if one by one, in order (a close may follow its open in the
    same batch), with a few set-wise statements (see above). The CDRs' wrap-up is
    copied once at the end: it is the sum of the call's finished wrap-ups, which only
    grows, so copying it after each change ends where copying it once does. A live
    batch's few changes go one statement each, in a pipeline (``_write_rows``)."""
    if len(changes) < staging.SET_WISE_FROM:
        with cur.connection.pipeline():
            _write_rows(cur, changes)
        return
    rounds = _rounds(_merged(changes, _unfinished(cur, changes)))
    staged: dict[type, list[tuple[object, ...]]] = {kind: [] for kind in _STAGES}
    for n, round_ in enumerate(rounds):
        for c in round_:
            staged[type(c)].append((n, *_row(c)))
    kinds = [kind for kind, rows in staged.items() if rows]
    for kind in kinds:
        name, columns = _STAGES[kind]
        staging.stage(cur, name, columns, staged[kind])
    with staging.keyed_lookups(cur):
        for n in range(len(rounds)):
            for kind in kinds:
                cur.execute(_STATEMENTS[kind], (n,))
    for kind in kinds:
        staging.unstage(cur, _STAGES[kind][0])
    wrapped = {c.call_id for c in changes if isinstance(c, EndWrapUp)
               or (isinstance(c, HandlingEnded) and not c.wrap_up)}
    if wrapped:
        calls.fill_wrap_up(cur, wrapped)


def _merged(changes: Sequence[Change], unfinished: set[Target]) -> list[Written]:
    """``changes`` with each target's first open in the batch and the changes after it
    that act on that row written as one row: one insert where the open's insert and
    its close's or end's updates made three row versions, each new in every index
    (most of a rebuild's queue_visits and queue_handling statements, which open and
    close most rows in the same page). Exact: a close or an end updates every row of
    its target still open, so only a target with no such row before the batch
    (``unfinished``) and none opened earlier in it merges; what does not merge (a
    close left before the visit's offer, an end after the first) stays a change of
    its own, in order."""
    out: list[Written] = []
    merging: dict[Target, int] = {}  # target -> where its merged row is in ``out``
    seen: set[Target] = set()
    for c in changes:
        key = _target(c)
        at = merging.get(key)
        if at is not None:
            row = _merge(out[at], c)
            if row is not None:
                out[at] = row
                continue
            del merging[key]
        elif key not in seen and key not in unfinished \
                and isinstance(c, OpenVisit | OpenHandling):
            merging[key] = len(out)
        seen.add(key)
        out.append(c)
    return out


def _merge(row: Written, c: Change) -> ClosedVisit | EndedHandling | None:
    """``row`` with ``c`` applied, if ``c`` changes it as its update would; else None."""
    if isinstance(row, OpenVisit) and isinstance(c, CloseVisit):
        return ClosedVisit(row, c) if row.visit.offered_at <= c.left_at else None
    if isinstance(row, OpenHandling) and isinstance(c, HandlingEnded):
        return EndedHandling(row, c, None)
    if isinstance(row, EndedHandling) and isinstance(c, EndWrapUp) \
            and row.ended.wrap_up and row.wrap_up is None:
        return row._replace(wrap_up=c)
    return None


# A lateral probe by key for each target: as EXISTS, the planner hashed a scan of the
# whole table (tests/integration/test_bulk_apply_plans.py).
_UNFINISHED = """
SELECT t.kind, t.a, t.b
FROM unnest(%s::text[], %s::uuid[], %s::uuid[]) AS t(kind, a, b)
CROSS JOIN LATERAL (
    SELECT 1 FROM queue_visits v
    WHERE t.kind = 'visit' AND v.queue_id = t.a AND v.call_id = t.b AND v.outcome IS NULL
    UNION ALL
    SELECT 1 FROM queue_handling h
    WHERE t.kind = 'handling' AND h.agent_id = t.a AND h.call_id = t.b
      AND (h.ended_at IS NULL OR h.wrap_up_ended_at IS NULL)
    LIMIT 1) AS found
"""


def _unfinished(cur: Cursor[TupleRow], changes: Sequence[Change]) -> set[Target]:
    """The targets opened in ``changes`` that already have a row a close or an end
    of theirs would update (a visit not closed; a handling not ended, or its wrap-up
    not ended): probed by key, a few in a rebuild's first pass."""
    opened = {_target(c) for c in changes if isinstance(c, OpenVisit | OpenHandling)}
    if not opened:
        return set()
    kinds, firsts, seconds = zip(*opened, strict=True)
    cur.execute(_UNFINISHED, (list(kinds), list(firsts), list(seconds)))
    return {(kind, a, b) for kind, a, b in cur.fetchall()}


def _rounds(changes: Sequence[Written]) -> list[list[Written]]:
    """The changes by round: each target's n-th change in round n."""
    rounds: list[list[Written]] = []
    seen: dict[Target, int] = {}
    for c in changes:
        key = _target(c)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(c)
    return rounds


def _target(c: Written) -> Target:
    if isinstance(c, ClosedVisit | EndedHandling):
        return _target(c.opened)
    if isinstance(c, OpenVisit):
        return ("visit", c.visit.queue_id, c.visit.call_id)
    if isinstance(c, CloseVisit):
        return ("visit", c.queue_id, c.call_id)
    if isinstance(c, OpenHandling):
        return ("handling", c.handling.agent_id, c.handling.call_id)
    return ("handling", c.agent_id, c.call_id)


def _row(c: Written) -> tuple[object, ...]:
    """The change's stage row (after its round), in its stage's column order."""
    if isinstance(c, ClosedVisit | EndedHandling):
        return _merged_row(c)
    if isinstance(c, OpenVisit):
        v = c.visit
        return (v.queue_id, v.call_id, v.offered_at, c.tenant, c.offered_version,
                v.transferred_in, c.short_abandon_s, c.position)
    if isinstance(c, CloseVisit):
        return (c.queue_id, c.call_id, c.outcome, c.left_at, c.wait_s, c.service_level_s,
                c.agent_id, c.position)
    if isinstance(c, OpenHandling):
        h = c.handling
        return (h.agent_id, h.call_id, h.accepted_at, c.tenant, h.queue_id, c.position)
    if isinstance(c, HandlingEnded):
        return (c.agent_id, c.call_id, c.ended_at, c.wrap_up, c.position)
    return (c.agent_id, c.call_id, c.at, c.position)


def _merged_row(c: ClosedVisit | EndedHandling) -> tuple[object, ...]:
    """The open's row (but its position), then what its close or end sets."""
    if isinstance(c, ClosedVisit):
        close = c.closed
        return (*_row(c.opened)[:-1], close.outcome, close.left_at, close.wait_s,
                close.service_level_s, close.agent_id, close.position)
    end, wrap = c.ended, c.wrap_up
    return (*_row(c.opened)[:-1], end.ended_at, end.wrap_up, None if wrap is None else wrap.at,
            end.position if wrap is None else wrap.position)


_OPEN_VISIT = """
INSERT INTO queue_visits (queue_id, call_id, offered_at, tenant, offered_version, transferred_in,
                          short_abandon_s, last_position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_CLOSE_VISIT = """
UPDATE queue_visits SET outcome = %s, left_at = %s, wait_s = %s, service_level_s = %s,
                        agent_id = %s, last_position = %s
WHERE queue_id = %s AND call_id = %s AND outcome IS NULL AND offered_at <= %s
"""
_OPEN_HANDLING = """
INSERT INTO queue_handling (agent_id, call_id, accepted_at, tenant, queue_id, last_position)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_END_CALL = """
UPDATE queue_handling
SET ended_at = %(at)s, talk_s = GREATEST(0, extract(epoch FROM %(at)s - accepted_at)),
    wrap_up_ended_at = CASE WHEN %(wrap)s THEN NULL ELSE %(at)s END,
    wrap_up_s = CASE WHEN %(wrap)s THEN NULL ELSE 0 END, last_position = %(pos)s
WHERE agent_id = %(agent)s AND call_id = %(call)s AND ended_at IS NULL
"""
_END_WRAP_UP = """
UPDATE queue_handling
SET wrap_up_ended_at = %(at)s, wrap_up_s = GREATEST(0, extract(epoch FROM %(at)s - ended_at)),
    last_position = %(pos)s
WHERE agent_id = %(agent)s AND call_id = %(call)s AND ended_at IS NOT NULL
  AND wrap_up_ended_at IS NULL
"""


def _write_rows(cur: Cursor[TupleRow], changes: Sequence[Change]) -> None:
    """A statement per change, in order (the caller pipelines them)."""
    for c in changes:
        if isinstance(c, OpenVisit):
            v = c.visit
            cur.execute(_OPEN_VISIT, (v.queue_id, v.call_id, v.offered_at, c.tenant,
                                      c.offered_version, v.transferred_in, c.short_abandon_s,
                                      c.position))
        elif isinstance(c, CloseVisit):
            cur.execute(_CLOSE_VISIT, (c.outcome, c.left_at, c.wait_s, c.service_level_s,
                                       c.agent_id, c.position, c.queue_id, c.call_id,
                                       c.left_at))
        elif isinstance(c, OpenHandling):
            h = c.handling
            cur.execute(_OPEN_HANDLING, (h.agent_id, h.call_id, h.accepted_at, c.tenant,
                                         h.queue_id, c.position))
        elif isinstance(c, HandlingEnded):
            cur.execute(_END_CALL, {"at": c.ended_at, "wrap": c.wrap_up, "pos": c.position,
                                    "agent": c.agent_id, "call": c.call_id})
            if not c.wrap_up:
                calls.fill_wrap_up(cur, [c.call_id])  # 0: the CDR's wrap-up is known now
        else:
            cur.execute(_END_WRAP_UP, {"at": c.at, "pos": c.position, "agent": c.agent_id,
                                       "call": c.call_id})
            calls.fill_wrap_up(cur, [c.call_id])
