"""Calls: in progress from `call_live`, ended ones from their `cdr` row; each query
limited to the caller's tenant (another tenant's call is not there: a 404)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from api.queries.where import Where

_LIVE = """
SELECT call_id, status, direction, caller, callee, target, trunk, queue, started_at,
       answered_at, on_hold_since, NULL::timestamptz AS ended_at, NULL::text AS disposition,
       last_version
FROM call_live
"""

# The cdr row is also the folded state of a call the live table no longer holds.
_FROM_CDR = """
SELECT call_id, status, direction, caller, callee, final_callee AS target, trunk, queue,
       started_at, answered_at, hold_started_at AS on_hold_since, ended_at, disposition,
       last_version
FROM cdr WHERE call_id = $1 AND tenant = $2
ORDER BY started_at DESC LIMIT 1
"""

_TIMELINE = """
SELECT version, type, occurred_at, position, event_id, data
FROM call_events WHERE call_id = $1 AND tenant = $2
ORDER BY version
"""


@dataclass(frozen=True)
class LiveFilter:
    status: str | None = None
    direction: str | None = None
    caller: str | None = None
    callee: str | None = None
    queue: str | None = None


async def live_calls(conn: asyncpg.Connection, tenant: str,
                     wanted: LiveFilter) -> list[asyncpg.Record]:
    where = Where()
    where.equal("tenant", tenant)
    for column in ("status", "direction", "caller", "callee", "queue"):
        where.equal(column, getattr(wanted, column))
    query = f"{_LIVE} WHERE {where.sql()} ORDER BY started_at, call_id"
    return list(await conn.fetch(query, *where.args))


async def call_state(conn: asyncpg.Connection, tenant: str,
                     call_id: UUID) -> asyncpg.Record | None:
    live = await conn.fetchrow(f"{_LIVE} WHERE call_id = $1 AND tenant = $2", call_id, tenant)
    return live if live is not None else await conn.fetchrow(_FROM_CDR, call_id, tenant)


async def timeline(conn: asyncpg.Connection, tenant: str,
                   call_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(_TIMELINE, call_id, tenant))
