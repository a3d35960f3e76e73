"""Time travel: the live view as it was at a past instant ``t`` (issue 11 §2).

Computed from the events that *occurred* at or before ``t``, as folded by the
call-centre projections into their fact tables, which are indexed by occurred
time: queue_visits (who was in a queue, from when to when), agent_state_intervals
(each agent's state periods), queue_handling and callcentre_events (offers). So
the cost is a few index reads (GiST indexes on each row's span, migration 0024:
"contains t" for what was open at ``t``, "overlaps the window" for the day up to
``t``), never a replay of the whole history.

* Who was waiting: the visits open at ``t`` (``offered_at <= t < left_at``), with
  their wait ``t - offered_at``; ringing when an agent was reserved for the
  call at ``t`` (offered, not yet accepted or missed: what queue_calls'
  ``ringing_agents`` says live).
* Each agent's state: the agent's last state period started at or before ``t``
  (periods are contiguous, so it is the one that holds ``t``).
* Figures: projections/kpi.py's window sums with ``until = t`` (today since the
  tenant's local midnight before ``t``, and the rolling window ending at ``t``).
  Those sums already count a visit open at ``t`` as waiting even when it has
  since ended, and clip every period at ``t`` (see kpi's window membership).

What is *current*, not as of ``t`` (docs/history.md): names, keys and queue
thresholds (service level, short abandon), queue membership (which agents count
in a queue's agent numbers), and calls in progress (``calls`` is null: a call's
past is its timeline). A queue or agent created after ``t`` is absent.

An event stored late (its ``occurred_at`` before an earlier answer's ``t``)
changes the answer for ``t`` once the projections apply it: ``position`` says
which store position each answer reflects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Query

from api.auth.dependencies import Principal
from api.auth.permissions import P
from api.db import acquire
from api.live.snapshot import (
    POSITION_PROJECTIONS,
    agent_live,
    agent_sums,
    figures,
    queue_now,
    queue_sums,
    tenant_summary,
)
from api.problems import invalid
from api.schemas.live import AgentLive, LiveSnapshot, QueueLive, QueueNow
from api.schemas.text import HISTORY_FROM, Instant
from projections import kpi, kpi_sql
from projections.kpi import AgentSums, QueueSums, Window

_ZONE_AND_POSITIONS = """
SELECT (SELECT time_zone FROM tenants WHERE id = $1) AS zone,
       ARRAY(SELECT ROW(source, max(position)::bigint) FROM projection_positions
             WHERE projection = ANY($2::text[]) GROUP BY source) AS positions
"""
# A thing exists at t when its first event (version 1) occurred at or before t.
_EXISTED = """EXISTS (SELECT 1 FROM callcentre_events c
                      WHERE c.aggregate_id = {id} AND c.version = 1 AND c.occurred_at <= $2)"""
_QUEUES = f"""
SELECT queue_id, key, name, service_level_s, short_abandon_s
FROM queue_live q
WHERE tenant = $1 AND ($3::uuid IS NULL OR queue_id = $3) AND {_EXISTED.format(id="q.queue_id")}
ORDER BY key
"""  # noqa: S608 - constants composed; values go as $n
# $3: the calls an agent was reserved for (ringing) at t.
_QUEUE_CALLS = f"""
SELECT queue_id,
       count(*) FILTER (WHERE NOT call_id = ANY($3::uuid[])) AS waiting,
       count(*) FILTER (WHERE call_id = ANY($3::uuid[])) AS ringing,
       max(GREATEST(0, extract(epoch FROM $2 - offered_at)))::float8 AS oldest_wait_s
FROM queue_visits
WHERE {kpi_sql.VISIT_SPAN} @> $2::timestamptz  -- by index (0024_window_ranges), then
  AND offered_at <= $2 AND (left_at IS NULL OR left_at > $2)  -- open at t, exactly
  AND tenant = $1
GROUP BY queue_id
"""  # noqa: S608 - constants composed; values go as $n
# Each agent's period holding t, by index (0024_window_ranges); periods are
# contiguous, so there is one (the newest, should two overlap).
_AGENTS = f"""
SELECT a.agent_id, a.key, a.name, i.state, i.started_at AS state_since,
       CASE WHEN i.state = 'paused' THEN i.reason END AS pause_reason,
       i.call_id AS current_call_id, i.queue_id AS current_queue_id
FROM agent_state a
JOIN (
    SELECT DISTINCT ON (agent_id) agent_id, state, started_at, reason, call_id, queue_id
    FROM agent_state_intervals
    WHERE {kpi_sql.PERIOD_SPAN} @> $2::timestamptz
      AND started_at <= $2 AND (ended_at IS NULL OR ended_at > $2)
      AND tenant = $1
    ORDER BY agent_id, started_version DESC, started_at DESC
) i USING (agent_id)
WHERE a.tenant = $1 AND ($3::text IS NULL OR a.key = $3) AND {_EXISTED.format(id="a.agent_id")}
ORDER BY a.key
"""  # noqa: S608 - constants composed; values go as $n
_MEMBERS = "SELECT queue_id, agent_id FROM queue_members WHERE tenant = $1"


async def snapshot_at(conn: asyncpg.Connection, principal: Principal, t: datetime,
                      window_s: float = kpi.DEFAULT_WINDOW_S, *, queue_id: UUID | None = None,
                      agent_key: str | None = None) -> LiveSnapshot:
    """The tenant's live view as of ``t``, as ``principal`` may see it (the same
    permission filters as api/live/snapshot.py). ``queue_id``/``agent_key``
    narrow it to one queue or agent (the per-resource ``/at`` routes)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _read(conn, principal, t, window_s, queue_id, agent_key)


async def _read(conn: asyncpg.Connection, principal: Principal, t: datetime, window_s: float,
                queue_id: UUID | None, agent_key: str | None) -> LiveSnapshot:
    tenant = principal.tenant
    row = await conn.fetchrow(_ZONE_AND_POSITIONS, tenant, list(POSITION_PROJECTIONS))
    zone = row["zone"] or "UTC"
    windows = (kpi.today(t, zone), kpi.rolling(t, window_s))
    sees_queues = principal.can(P.REPORTS_READ) or principal.can(P.CONFIG_READ)
    # Every agent's state at t (a queue's agent numbers count its members, whoever asks).
    states = await conn.fetch(_AGENTS, tenant, t, agent_key)
    sums = [await queue_sums(conn, tenant, w) for w in windows] if sees_queues else [{}, {}]
    queues = (await _queues(conn, tenant, t, queue_id, windows, sums, states)
              if sees_queues and agent_key is None else [])
    agents = [] if queue_id is not None else await _agents(conn, principal, t, windows[0],
                                                            states)
    summary = (tenant_summary(queues, agents, None, windows, sums)
               if principal.can(P.REPORTS_READ) and queue_id is None and agent_key is None
               else None)
    return LiveSnapshot(tenant=tenant, as_of=t, time_zone=zone, window_s=window_s,
                        position={source: int(p) for source, p in row["positions"]},
                        queues=queues, agents=agents, calls=None, summary=summary)


async def _agents(conn: asyncpg.Connection, principal: Principal, t: datetime, today: Window,
                  states: list[asyncpg.Record]) -> list[AgentLive]:
    """The agents the principal may see (as api/live/snapshot.py decides), as of t."""
    if principal.can(P.AGENTS_READ):
        visible, with_calls = states, principal.can(P.CALLS_READ)
    elif principal.can(P.AGENTS_SELF) and principal.agent_key is not None:
        visible = [r for r in states if r["key"] == principal.agent_key]
        with_calls = True
    else:
        return []
    if not visible:
        return []
    sums = await agent_sums(conn, principal.tenant, today)
    return [agent_live(r, sums.get(r["agent_id"], AgentSums()), t, with_calls) for r in visible]


async def _queues(conn: asyncpg.Connection, tenant: str, t: datetime, queue_id: UUID | None,
                  windows: tuple[Window, Window], sums: list[dict[UUID, QueueSums]],
                  agents: list[asyncpg.Record]) -> list[QueueLive]:
    rows = await conn.fetch(_QUEUES, tenant, t, queue_id)
    ringing = [a["current_call_id"] for a in agents if a["state"] == "reserved"]
    calls = {r["queue_id"]: r for r in await conn.fetch(_QUEUE_CALLS, tenant, t, ringing)}
    state = {a["agent_id"]: a for a in agents}
    members: defaultdict[UUID, list[Any]] = defaultdict(list)
    for m in await conn.fetch(_MEMBERS, tenant):
        if m["agent_id"] in state:
            members[m["queue_id"]].append(state[m["agent_id"]])
    today, window = sums
    return [QueueLive(
        queue_id=r["queue_id"], key=r["key"], name=r["name"],
        service_level_s=r["service_level_s"], short_abandon_s=r["short_abandon_s"],
        now=_queue_now(calls.get(r["queue_id"]), members[r["queue_id"]]),
        today=figures(today.get(r["queue_id"], QueueSums()), windows[0]),
        window=figures(window.get(r["queue_id"], QueueSums()), windows[1]),
    ) for r in rows]


def _queue_now(calls: asyncpg.Record | None, members: list[Any]) -> QueueNow:
    states = Counter(m["state"] for m in members)
    reasons = Counter(m["pause_reason"] or "" for m in members if m["state"] == "paused")
    return queue_now(calls, states, reasons)


# -- what the /at routes share ---------------------------------------------------------------

At = Annotated[Instant, Query(description=(
    "The instant, RFC 3339 with an offset (e.g. `2026-03-01T09:30:00Z`); not in the future. "
    "Events that occurred at or before it count (docs/history.md)."))]


async def read_at(pool: asyncpg.Pool, principal: Principal, t: datetime, *,
                  queue_id: UUID | None = None, agent_key: str | None = None) -> LiveSnapshot:
    """The snapshot at ``t`` on a pooled connection; 422 naming ``t`` when it is
    after the database clock (the future has no events yet)."""
    if t < HISTORY_FROM:  # the rolling windows before it would leave year 1
        raise invalid("t", f"must not be before {HISTORY_FROM.year}")
    async with acquire(pool) as db:
        if t > await db.fetchval("SELECT now()"):
            raise invalid("t", "must not be in the future")
        return await snapshot_at(db, principal, t, queue_id=queue_id, agent_key=agent_key)
