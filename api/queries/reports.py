"""Interval reports (issue 11 §1): per queue or agent and report bucket, the figures
of projections/kpi.py over the bucket.

A report bucket's sums are the stored buckets it holds (interval_queue,
interval_agent, interval_agent_state, or the same tables' hours, ``_hour``:
added up in SQL, the longest wait as a max), plus the parts read straight from
the fact tables with kpi's SQL: 15-minute buckets never computed (nothing
happened in them, but open periods and waiting calls go on), those the
refresher has yet to recompute, and the one still running, up to now.
Report buckets that start at or after now are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from projections import interval_buckets as ib
from projections import interval_reports as ir
from projections import kpi

# A stored row belongs to the report bucket whose start is the last of the report
# buckets' starts ($2, ascending) at or before its own: width_bucket gives that start's
# index (the row's slot), with no join (a hash join of the 15-minute rows with a list
# of them spilled to disk: 140 ms for a month of 50 queues, against 60 ms).
_WHERE = """
WHERE t.tenant = $1 AND t.bucket_start >= $3 AND t.bucket_start < $4
  AND ($5::uuid[] IS NULL OR t.{key} = ANY($5::uuid[]))
"""
# Per kind: table, key, the columns summed, the columns that split a key's rows.
_TABLES = {
    "queue": ("interval_queue", "queue_id", ib.QUEUE_COLUMNS, ()),
    "agent": ("interval_agent", "agent_id", ib.AGENT_COLUMNS, ()),
    "state": ("interval_agent_state", "agent_id", ("seconds",), ("state", "reason")),
}


def _stored_query(kind: str, hours: bool, per_bucket: bool) -> str:
    """A kind's stored rows (its hours' with ``hours``) per report bucket and key: summed,
    or, when each report bucket is one stored bucket (``per_bucket``: 15-minute reports),
    as they are, in bucket then key order (the primary key's: no sort, no aggregate).
    Every name here is a constant."""
    table, key, columns, split = _TABLES[kind]
    keys = ", ".join(f"t.{c}" for c in (key, *split))
    values = ", ".join(
        f"t.{c}" if per_bucket else f"{'max' if c in ir.MAXIMA else 'sum'}(t.{c}) AS {c}"
        for c in columns)
    select = (f"SELECT width_bucket(t.bucket_start, $2::timestamptz[]) AS slot, {keys}, "  # noqa: S608
              f"{values} FROM {table}{'_hour' if hours else ''} t")
    last = f"ORDER BY t.bucket_start, {keys}" if per_bucket else f"GROUP BY 1, {keys}"
    return select + _WHERE.format(key=key) + last


STORED = {(kind, hours, per_bucket): _stored_query(kind, hours, per_bucket)
          for kind in _TABLES for hours in (False, True) for per_bucket in (False, True)}
# (report bucket's index in the report, queue or agent id) -> summed sums
Totals = defaultdict[tuple[int, UUID], dict[str, Any]]
# Computed buckets the refresher has not yet caught up with are not read: from the
# tenant's earliest dirty bucket on, a bucket may miss events already in the fact
# tables (projections/interval_buckets.py), so those are read from the fact tables,
# and their stored rows are left out (else they would count twice).
_FIRST_DIRTY = "SELECT min(bucket_start) FROM interval_dirty WHERE tenant = $1"
_MARKS = """
SELECT bucket_start FROM interval_marks
WHERE tenant = $1 AND bucket_start >= $2 AND bucket_start < $3
  AND ($4::timestamptz IS NULL OR bucket_start < $4)
"""
ENTITIES = {
    "queue": "SELECT queue_id AS id, key, name FROM queue_live WHERE tenant = $1",
    "agent": "SELECT agent_id AS id, key, name FROM agent_state WHERE tenant = $1",
}


@dataclass(frozen=True)
class ReportRequest:
    tenant: str
    kind: str  # "queue" or "agent"
    interval: ir.Interval
    since: datetime
    until: datetime
    ids: list[UUID] | None  # None: every queue (agent)


async def resolve(conn: asyncpg.Connection, tenant: str, kind: str,
                  wanted: Sequence[str]) -> tuple[dict[UUID, asyncpg.Record], list[str]]:
    """The tenant's queues (agents) by id, and which of `wanted` (ids or keys) are unknown."""
    rows = {r["id"]: r for r in await conn.fetch(ENTITIES[kind], tenant)}
    keys = {r["key"]: r["id"] for r in rows.values()}
    ids = {str(i): i for i in rows}
    unknown = [w for w in wanted if w not in keys and w.lower() not in ids]
    return rows, unknown


def ids_of(rows: dict[UUID, asyncpg.Record], wanted: Sequence[str]) -> list[UUID]:
    keys = {r["key"]: r["id"] for r in rows.values()}
    return sorted({keys.get(w) or UUID(w) for w in wanted}, key=str)


@asynccontextmanager
async def snapshot(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """The transaction a report is read in: one snapshot for its stored and its live
    parts, and plans made for its own arguments. asyncpg prepares each statement, and
    after five runs PostgreSQL may keep a generic plan: the daily report's sum took
    150 ms on one against 60 ms planned for its arguments."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield


async def report(conn: asyncpg.Connection, request: ReportRequest, zone: str,
                 now: datetime) -> list[tuple[kpi.Window, UUID, dict[str, Any]]]:
    """(report bucket, queue or agent id, summed sums), in bucket then id order."""
    groups = [g for g in ir.buckets(request.since, request.until, request.interval, zone)
              if g.since < now]
    if not groups:
        return []
    first_dirty = await conn.fetchval(_FIRST_DIRTY, request.tenant)
    computed = {r["bucket_start"] for r in await conn.fetch(
        _MARKS, request.tenant, groups[0].since, groups[-1].until, first_dirty)}
    totals: Totals = defaultdict(dict)
    stored_until = ib.floor(now) if first_dirty is None else min(ib.floor(now), first_dirty)
    await _stored(conn, request, groups, stored_until, totals)
    for slot, group in enumerate(groups, 1):
        for window in ir.live_windows(group, computed, now):
            await _live(conn, request, slot, window, totals)
    # Ids in their text's order: a UUID's 128-bit number orders as its fixed-width hex
    # does, and is had without formatting 48,000 strings (0.45 s of a day's agent report).
    return [(groups[slot - 1], entity, sums)
            for (slot, entity), sums in sorted(totals.items(),
                                               key=lambda i: (i[0][0], i[0][1].int))]


async def _stored(conn: asyncpg.Connection, request: ReportRequest, groups: list[kpi.Window],
                  stored_until: datetime, totals: Totals) -> None:
    end = min(groups[-1].until, stored_until)  # the running and the dirty buckets: not stored
    if end <= groups[0].since:
        return
    # Report buckets are contiguous and start on 15-minute boundaries (every zone's
    # offset is a multiple of 15 minutes): each stored bucket is in exactly one. When
    # they all start on whole UTC hours (hourly and daily reports in a zone whose offset
    # is whole hours), so does each stored hour: the hours are read up to the last whole
    # one before ``end``, the 15-minute buckets after it.
    starts = [g.since for g in groups]
    hours_until = ib.hour_of(end) if all(ib.hour_of(s) == s for s in starts) else starts[0]
    per_bucket = request.interval == "15m"
    for hours, since, until in ((True, starts[0], hours_until), (False, hours_until, end)):
        if since < until:
            args = (request.tenant, starts, since, until, request.ids)
            await _sums(conn, request.kind, (hours, per_bucket and not hours), args, totals)


async def _sums(conn: asyncpg.Connection, kind: str, variant: tuple[bool, bool],
                args: tuple[Any, ...], totals: Totals) -> None:
    rows = await conn.fetch(STORED[(kind, *variant)], *args)
    names = list(rows[0].keys())[2:] if rows else []
    for row in rows:
        sums = dict(zip(names, row[2:], strict=True))
        key = (row[0], row[1])
        if key in totals:
            ir.add(totals[key], sums)
        else:  # most rows: a report bucket's first sums, taken as they are
            totals[key] = sums
    if kind == "agent":
        for slot, agent, state, reason, seconds in await conn.fetch(
                STORED[("state", *variant)], *args):
            states = totals[(slot, agent)].setdefault("states", {})
            states[(state, reason)] = states.get((state, reason), 0.0) + seconds


async def _live(conn: asyncpg.Connection, request: ReportRequest, slot: int,
                window: kpi.Window, totals: Totals) -> None:
    queues, agents = await window_sums(conn, request.tenant, window, (request.kind,))
    found = queues if request.kind == "queue" else agents
    for entity, sums in found.items():
        if (request.ids is None or entity in request.ids) and _anything(sums):
            ir.add(totals[(slot, entity)], sums)


def _anything(sums: dict[str, Any]) -> bool:
    """Whether the sums hold anything (an agent logged out all along has only zeros,
    and no stored row either)."""
    return any(v for v in sums.values())


async def window_sums(conn: asyncpg.Connection, tenant: str, window: kpi.Window,
                      kinds: tuple[str, ...] = ("queue", "agent")
                      ) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]]]:
    """kpi's sums over one window, per queue and per agent (only the `kinds` asked
    for), shaped as the bucket tables' rows (the agents' with their time by state
    and reason under "states")."""
    args = (tenant, window.since, window.until)
    queues: dict[UUID, dict[str, Any]] = {}
    agents: dict[UUID, dict[str, Any]] = {}
    if "queue" in kinds:
        queues = {r["queue_id"]: ib.vars_of(kpi.QueueSums.of_row(r))
                  for r in await conn.fetch(kpi.QUEUE_SUMS, *args)}
    if "agent" in kinds:
        parts: defaultdict[UUID, dict[str, Any]] = defaultdict(dict)
        for query in (kpi.AGENT_SUMS, kpi.AGENT_HANDLED, kpi.AGENT_MISSED):
            for r in await conn.fetch(query, *args):
                parts[r["agent_id"]].update({k: v for k, v in r.items() if k != "agent_id"})
        agents = {a: ib.vars_of(kpi.AgentSums(**values)) for a, values in parts.items()}
    split = [dict(r) for r in await conn.fetch(kpi.HANDLE_SPLIT, *args)]
    ib.add_split(queues, agents, split)
    if "agent" in kinds:
        for r in await conn.fetch(kpi.AGENT_STATE_TIMES, *args):
            states = agents.setdefault(r["agent_id"], ib.vars_of(kpi.AgentSums()))
            ir.add(states, {"states": {(r["state"], r["reason"]): r["seconds"]}})
    return queues, agents
