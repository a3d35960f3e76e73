"""`live_snapshot`: everything the caller's tenant and role may see right now.

One read, on one connection inside one REPEATABLE READ transaction, so every
part (positions, queues, agents, calls, figures) reflects the same projection
state, and `position` says which. Figures come from projections/kpi.py: SQL
sums for the windows, Python ratios. Time-driven values (waits, time in state,
the windows themselves) are computed at `as_of`, the database clock.

What a role sees follows its permissions, not its name:

* queues and the tenant summary: `reports:read` or `config:read`
  (summary: `reports:read`);
* every agent: `agents:read`; otherwise, with `agents:self`, only the caller's
  own agent;
* calls in progress and the call an agent is on: `calls:read` (analysts see
  figures, not live calls).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.dependencies import Principal
from api.auth.permissions import P
from api.schemas.live import (
    AgentLive,
    CallLive,
    LiveSnapshot,
    QueueFigures,
    QueueLive,
    QueueNow,
    TenantSummary,
)
from projections import kpi
from projections.kpi import AgentSums, QueueSums, Window

# The projections whose applied positions the snapshot reports (names[0] of the
# call-centre group, and of the calls group for call_live).
POSITION_PROJECTIONS = ("callcentre_events", "calls")

# The tenant's zone and the positions in one round trip (each costs a wake-up of
# both processes: bench/live_snapshot.py's profile).
_ZONE_AND_POSITIONS = """
SELECT (SELECT time_zone FROM tenants WHERE id = $1) AS zone,
       ARRAY(SELECT ROW(source, max(position)::bigint) FROM projection_positions
             WHERE projection = ANY($2::text[]) GROUP BY source) AS positions
"""
_QUEUES = """
SELECT queue_id, key, name, service_level_s, short_abandon_s
FROM queue_live WHERE tenant = $1 ORDER BY key
"""
# Counted in SQL: one row per queue (or queue, state and reason), not one per
# call or membership, to decode.
_QUEUE_CALLS = """
SELECT queue_id,
       count(*) FILTER (WHERE cardinality(ringing_agents) = 0) AS waiting,
       count(*) FILTER (WHERE cardinality(ringing_agents) > 0) AS ringing,
       max(GREATEST(0, extract(epoch FROM $2 - enqueued_at)))::float8 AS oldest_wait_s,
       min(enqueued_at) AS oldest_enqueued_at
FROM queue_calls WHERE tenant = $1 GROUP BY queue_id
"""
_MEMBERS = """
SELECT m.queue_id, a.state, coalesce(a.pause_reason, '') AS reason, count(*) AS n
FROM queue_members m JOIN agent_state a USING (agent_id)
WHERE m.tenant = $1 AND a.tenant = $1
GROUP BY m.queue_id, a.state, reason
"""
# Each agent with its sums over today, the formulas' own SQL (kpi.py) joined in:
# one round trip for what was four.
_AGENTS = f"""
WITH s AS MATERIALIZED ({kpi.AGENT_SUMS}), h AS MATERIALIZED ({kpi.AGENT_HANDLED}),
     m AS MATERIALIZED ({kpi.AGENT_MISSED})
SELECT a.agent_id, a.key, a.name, a.state, a.state_since, a.pause_reason, a.current_call_id,
       a.current_queue_id, s.staffed_s, s.paused_s, s.on_call_s, s.wrap_up_s, h.handled,
       h.handle_s, m.missed_offers
FROM agent_state a
LEFT JOIN s USING (agent_id) LEFT JOIN h USING (agent_id) LEFT JOIN m USING (agent_id)
WHERE a.tenant = $1 AND ($4::text IS NULL OR a.key = $4) ORDER BY a.key
"""  # noqa: S608 - constants composed; values go as $n
_AGENT_SUM_FIELDS = ("staffed_s", "paused_s", "on_call_s", "wrap_up_s", "handled", "handle_s",
                     "missed_offers")
_CALLS = """
SELECT call_id, status, direction, caller, callee, queue, started_at, answered_at,
       on_hold_since, GREATEST(0, extract(epoch FROM $2 - started_at))::float8 AS duration_s
FROM call_live WHERE tenant = $1 ORDER BY started_at, call_id
"""


@dataclass(frozen=True)
class LiveParts:
    """A snapshot with what it was made of that it does not show: each queue's sums
    over its two windows (the summary adds them up) and the time its oldest waiting
    call entered it (its wait at any later instant). api/live/touched.py re-reads
    the parts a change touched and keeps the rest from here."""

    snapshot: LiveSnapshot
    windows: tuple[Window, Window]
    sums: tuple[dict[UUID, QueueSums], dict[UUID, QueueSums]]
    oldest: dict[UUID, datetime]  # queue -> enqueued_at of its oldest call
    # Read in part: the queues, agents and calls that may differ from the previous
    # parts (None: read whole).
    changed: tuple[frozenset[UUID], frozenset[UUID], frozenset[UUID]] | None = None


async def live_snapshot(conn: asyncpg.Connection, principal: Principal, now: datetime,
                        window_s: float = kpi.DEFAULT_WINDOW_S) -> LiveSnapshot:
    """The tenant's live view as `principal` may see it, as of `now` (pass the
    database clock, `SELECT now()`, so waits never come out negative)."""
    return (await live_parts(conn, principal, now, window_s)).snapshot


async def live_parts(conn: asyncpg.Connection, principal: Principal, now: datetime,
                     window_s: float = kpi.DEFAULT_WINDOW_S) -> LiveParts:
    """`live_snapshot` with its parts (`LiveParts`)."""
    if conn.is_in_transaction():  # the caller's (api/live/cache.py): no savepoint
        return await _read(conn, principal, now, window_s)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _read(conn, principal, now, window_s)


async def zone_and_positions(conn: asyncpg.Connection,
                             tenant: str) -> tuple[str, dict[str, int]]:
    """The tenant's time zone and the positions the snapshot reports."""
    row = await conn.fetchrow(_ZONE_AND_POSITIONS, tenant, list(POSITION_PROJECTIONS))
    return row["zone"] or "UTC", {source: int(p) for source, p in row["positions"]}


def sees_queues(principal: Principal) -> bool:
    return principal.can(P.REPORTS_READ) or principal.can(P.CONFIG_READ)


async def _read(conn: asyncpg.Connection, principal: Principal, now: datetime,
                window_s: float) -> LiveParts:
    tenant = principal.tenant
    zone, position = await zone_and_positions(conn, tenant)
    windows = (kpi.today(now, zone), kpi.rolling(now, window_s))
    queue_view = sees_queues(principal)
    sums = ((await queue_sums(conn, tenant, windows[0]), await queue_sums(conn, tenant, windows[1]))
            if queue_view else ({}, {}))
    queues, oldest = (await _queues(conn, tenant, now, windows, sums) if queue_view
                      else ([], {}))
    agents = await _agents(conn, principal, now, windows[0])
    calls = await _calls(conn, tenant, now) if principal.can(P.CALLS_READ) else None
    summary = (tenant_summary(queues, agents, calls, windows, list(sums))
               if principal.can(P.REPORTS_READ) else None)
    snapshot = LiveSnapshot(tenant=tenant, as_of=now, time_zone=zone, window_s=window_s,
                            position=position, queues=queues, agents=agents, calls=calls,
                            summary=summary)
    return LiveParts(snapshot, windows, sums, oldest)


# -- queues --------------------------------------------------------------------------------


async def _queues(conn: asyncpg.Connection, tenant: str, now: datetime,
                  windows: tuple[Window, Window],
                  sums: tuple[dict[UUID, QueueSums], dict[UUID, QueueSums]]
                  ) -> tuple[list[QueueLive], dict[UUID, datetime]]:
    rows = await conn.fetch(_QUEUES, tenant)
    calls = {r["queue_id"]: r for r in await conn.fetch(_QUEUE_CALLS, tenant, now)}
    members = by_queue(await conn.fetch(_MEMBERS, tenant))
    return queue_lines(rows, calls, members, windows, sums)


def queue_lines(rows: list[asyncpg.Record], calls: Mapping[UUID, asyncpg.Record],
                members: Mapping[UUID, list[asyncpg.Record]], windows: tuple[Window, Window],
                sums: tuple[dict[UUID, QueueSums], dict[UUID, QueueSums]]
                ) -> tuple[list[QueueLive], dict[UUID, datetime]]:
    """Each queue of `rows` (_QUEUES) with its calls (_QUEUE_CALLS) and members
    (_MEMBERS), and the time its oldest waiting call entered it."""
    today, window = sums
    lines = [QueueLive(
        queue_id=r["queue_id"], key=r["key"], name=r["name"],
        service_level_s=r["service_level_s"], short_abandon_s=r["short_abandon_s"],
        now=_queue_now(calls.get(r["queue_id"]), members.get(r["queue_id"], [])),
        today=figures(today.get(r["queue_id"], QueueSums()), windows[0]),
        window=figures(window.get(r["queue_id"], QueueSums()), windows[1]),
    ) for r in rows]
    oldest = {r["queue_id"]: calls[r["queue_id"]]["oldest_enqueued_at"] for r in rows
              if r["queue_id"] in calls}
    return lines, oldest


async def queue_sums(conn: asyncpg.Connection, tenant: str,
                     window: Window) -> dict[UUID, QueueSums]:
    """Each queue's sums over `window` (queues with nothing in it are absent)."""
    rows = await conn.fetch(kpi.QUEUE_SUMS, tenant, window.since, window.until)
    return {r["queue_id"]: QueueSums.of_row(r) for r in rows}


def by_queue(rows: list[asyncpg.Record]) -> defaultdict[UUID, list[asyncpg.Record]]:
    grouped: defaultdict[UUID, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        grouped[row["queue_id"]].append(row)
    return grouped


def figures(sums: QueueSums, window: Window) -> QueueFigures:
    return QueueFigures(**kpi.queue_figures(sums, window))


def _queue_now(calls: asyncpg.Record | None, members: list[asyncpg.Record]) -> QueueNow:
    states: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for m in members:
        states[m["state"]] += m["n"]
        if m["state"] == "paused":
            reasons[m["reason"]] += m["n"]
    return queue_now(calls, states, reasons)


def queue_now(calls: Mapping[str, Any] | None, states: Counter[str],
              reasons: Counter[str]) -> QueueNow:
    """A queue's line now: its waiting calls and its members counted by state (and
    the paused ones by reason)."""
    return QueueNow(
        calls_waiting=calls["waiting"] if calls else 0,
        calls_ringing=calls["ringing"] if calls else 0,
        oldest_wait_s=calls["oldest_wait_s"] if calls else None,
        agents_staffed=sum(n for state, n in states.items() if state != "logged_out"),
        agents_available=states["available"], agents_reserved=states["reserved"],
        agents_on_call=states["on_call"], agents_wrap_up=states["wrap_up"],
        agents_paused=states["paused"], paused_by_reason=dict(reasons))


# -- agents --------------------------------------------------------------------------------


async def _agents(conn: asyncpg.Connection, principal: Principal, now: datetime,
                  today: Window) -> list[AgentLive]:
    sees, only = agents_only(principal)
    if not sees:
        return []
    rows = await conn.fetch(_AGENTS, principal.tenant, today.since, today.until, only)
    return agent_lines(principal, rows, now)


def agent_lines(principal: Principal, rows: list[asyncpg.Record],
                now: datetime) -> list[AgentLive]:
    """The agents of `rows` (_AGENTS) as `principal` may see them."""
    with_calls = principal.can(P.CALLS_READ) or not principal.can(P.AGENTS_READ)
    return [agent_live(r, _agent_sums(r), now, with_calls) for r in rows]


def agents_only(principal: Principal) -> tuple[bool, str | None]:
    """Whether `principal` sees agents, and which one only (None: all of them)."""
    if principal.can(P.AGENTS_READ):
        return True, None
    if principal.can(P.AGENTS_SELF) and principal.agent_key is not None:
        return True, principal.agent_key
    return False, None


def _agent_sums(row: asyncpg.Record) -> AgentSums:
    """The sums joined to an agent's row (NULL, from the outer joins: nothing, 0)."""
    return AgentSums(**{name: row[name] or 0 for name in _AGENT_SUM_FIELDS})


async def agent_sums(conn: asyncpg.Connection, tenant: str,
                     window: Window) -> dict[UUID, AgentSums]:
    """Each agent's sums over `window` (state times, handled calls, missed offers)."""
    args = (tenant, window.since, window.until)
    parts: dict[UUID, dict[str, Any]] = defaultdict(dict)
    for query in (kpi.AGENT_SUMS, kpi.AGENT_HANDLED, kpi.AGENT_MISSED):
        for row in await conn.fetch(query, *args):
            parts[row["agent_id"]].update({k: v for k, v in row.items() if k != "agent_id"})
    return {agent_id: AgentSums(**values) for agent_id, values in parts.items()}


def agent_live(row: Mapping[str, Any], sums: AgentSums, now: datetime,
               with_calls: bool) -> AgentLive:
    """One agent's row as of `now` (the live view and the view at a past instant)."""
    return AgentLive(
        agent_id=row["agent_id"], key=row["key"], name=row["name"], state=row["state"],
        state_since=row["state_since"],
        time_in_state_s=max(0.0, (now - row["state_since"]).total_seconds()),
        pause_reason=row["pause_reason"],
        current_call_id=row["current_call_id"] if with_calls else None,
        current_queue_id=row["current_queue_id"],
        handled_today=sums.handled, aht_today_s=kpi.agent_aht(sums),
        occupancy_today=kpi.occupancy(sums), missed_offers_today=sums.missed_offers)


# -- calls and summary ---------------------------------------------------------------------


async def _calls(conn: asyncpg.Connection, tenant: str, now: datetime) -> list[CallLive]:
    return [CallLive(**dict(r)) for r in await conn.fetch(_CALLS, tenant, now)]


def tenant_summary(queues: list[QueueLive], agents: list[AgentLive],
                   calls: list[CallLive] | None, windows: tuple[Window, Window],
                   sums: list[dict[UUID, QueueSums]]) -> TenantSummary:
    """The tenant-wide line; `calls` None when the caller may not see calls (or they
    are not known, as at a past instant)."""
    states = Counter(a.state for a in agents)
    return TenantSummary(
        calls_waiting=sum(q.now.calls_waiting + q.now.calls_ringing for q in queues),
        oldest_wait_s=max((q.now.oldest_wait_s for q in queues
                           if q.now.oldest_wait_s is not None), default=None),
        calls_in_progress=None if calls is None else len(calls),
        agents_staffed=sum(n for state, n in states.items() if state != "logged_out"),
        agents_available=states["available"], agents_on_call=states["on_call"],
        agents_wrap_up=states["wrap_up"], agents_paused=states["paused"],
        today=figures(sum(sums[0].values(), QueueSums()), windows[0]),
        window=figures(sum(sums[1].values(), QueueSums()), windows[1]))
