"""The event history: one aggregate's timeline and a tenant's whole log.

Read from the projected event tables, not from the event store: `call_events`
(the call store's events) and `callcentre_events` (agents, queues, IVR menus,
numbers, dialplans) already hold every event decoded, as published (the same
`type` and `data` as the CloudEvent on Kafka), tagged with the tenant of its
aggregate and indexed by (tenant, position) (migration 0017). The store holds
the tenant only on an aggregate's first event and its payloads in the
application's own encoding, so a tenant filter there means decoding every
event of every tenant. Each application numbers its own events, so a position
is a place in one *log* (`calls` or `callcentre`), never across both.

Each event comes with the actor and request id of the API command that stored
it, if one did (audit_log.positions lists the positions in one store's log).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import asyncpg

from api.queries.where import Where
from application.callcentre import CallCentreService
from application.calls import CallService

EXPORT_CHUNK_ROWS = 5000


class EventLog(StrEnum):
    """One application's notification log (its positions are its own)."""

    CALLS = "calls"
    CALLCENTRE = "callcentre"


@dataclass(frozen=True)
class _Table:
    name: str
    aggregate: str  # the aggregate id column
    kind: str  # SQL giving the aggregate kind
    store: str  # audit_log.event_store of the log


TABLES = {
    EventLog.CALLS: _Table("call_events", "call_id", "'call'::text", CallService.name),
    EventLog.CALLCENTRE: _Table("callcentre_events", "aggregate_id", "e.kind",
                                CallCentreService.name),
}

def _select(log: EventLog, where: Where, order: str, limit: int | None) -> tuple[str, list[object]]:
    table = TABLES[log]
    where.args.append(table.store)
    store = f"${len(where.args)}"
    query = f"""
SELECT '{log.value}'::text AS log, e.position, e.occurred_at, {table.kind} AS kind,
       e.{table.aggregate} AS aggregate_id, e.version, e.type, e.event_id, e.data,
       a.actor, a.actor_kind, a.request_id
FROM {table.name} e
LEFT JOIN LATERAL (
    SELECT actor, actor_kind, request_id FROM audit_log
    WHERE event_store = {store} AND positions @> ARRAY[e.position] AND tenant = e.tenant
    LIMIT 1
) a ON TRUE
WHERE {where.sql()}
ORDER BY {order}"""  # noqa: S608 - table, columns and order are constants
    if limit is not None:
        where.args.append(limit)
        query += f" LIMIT ${len(where.args)}"
    return query, where.args


async def timeline(conn: asyncpg.Connection, tenant: str, kind: str, aggregate_id: UUID,
                   after: int, limit: int) -> list[asyncpg.Record] | None:
    """Up to `limit` events of one call-centre aggregate after version `after`, in
    version order; None if the tenant has no such aggregate (404)."""
    where = Where()
    where.add("e.aggregate_id = {}", aggregate_id)
    where.add("e.tenant = {}", tenant)
    where.add("e.kind = {}", kind)
    where.add("e.version > {}", after)
    query, args = _select(EventLog.CALLCENTRE, where, "e.version", limit)
    rows = list(await conn.fetch(query, *args))
    if rows or await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM callcentre_events WHERE aggregate_id = $1"
            " AND tenant = $2 AND kind = $3)", aggregate_id, tenant, kind):
        return rows
    return None


@dataclass(frozen=True)
class EventFilter:
    tenant: str  # the caller's: only its events
    log: EventLog
    kind: str | None = None
    type: str | None = None
    start: datetime | None = None  # occurred_at, inclusive
    end: datetime | None = None  # occurred_at, exclusive


def _where(wanted: EventFilter, after: int = 0) -> Where:
    where = Where()
    where.add("e.tenant = {}", wanted.tenant)
    where.add("e.position > {}", after)
    if wanted.kind is not None:
        where.add(f"{TABLES[wanted.log].kind} = {{}}", wanted.kind)
    where.equal("e.type", wanted.type)
    if wanted.start is not None:
        where.add("e.occurred_at >= {}", wanted.start)
    if wanted.end is not None:
        where.add("e.occurred_at < {}", wanted.end)
    return where


async def page(conn: asyncpg.Connection, wanted: EventFilter, after: int,
               limit: int) -> tuple[list[asyncpg.Record], int | None]:
    """Up to `limit` events after position `after` in store order, and the
    position to continue after (None on the last page)."""
    query, args = _select(wanted.log, _where(wanted, after), "e.position", limit + 1)
    rows = list(await conn.fetch(query, *args))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], int(rows[limit - 1]["position"])


async def stream(conn: asyncpg.Connection, wanted: EventFilter,
                 chunk_rows: int = EXPORT_CHUNK_ROWS) -> AsyncIterator[list[asyncpg.Record]]:
    """Every matching event in store order, in chunks, through a server-side
    cursor (bounded memory whatever the range)."""
    query, args = _select(wanted.log, _where(wanted), "e.position", None)
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(chunk_rows):
            yield rows


async def stream_logs(conn: asyncpg.Connection, tenant: str, start: datetime, end: datetime,
                      log: EventLog | None = None) -> AsyncIterator[list[asyncpg.Record]]:
    """The events that occurred in [start, end): those of `log`, or of each log in
    turn (calls first), each in store order."""
    for each in (log,) if log is not None else tuple(EventLog):
        wanted = EventFilter(tenant=tenant, log=each, start=start, end=end)
        async for rows in stream(conn, wanted):
            yield rows


async def count(conn: asyncpg.Connection, wanted: EventFilter) -> int:
    """How many events `stream` yields (a progress bar's total)."""
    where = _where(wanted)
    table = TABLES[wanted.log]
    query = f"SELECT count(*) FROM {table.name} e WHERE {where.sql()}"  # noqa: S608 - constants
    return int(await conn.fetchval(query, *where.args))
