"""Final CDRs by start time, keyset-paged on (started_at, call_id).

Every query carries the caller's tenant and `ended_at IS NOT NULL` and orders by
(started_at, call_id), so it runs on the partial index `cdr_tenant_final_by_start`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from api.paging import Keyset
from api.queries.where import Where
from api.schemas.cdrs import CDR_COLUMNS

STREAM_CHUNK_ROWS = 500


@dataclass(frozen=True)
class CdrFilter:
    tenant: str  # the caller's: only its CDRs
    start: datetime  # inclusive
    end: datetime  # exclusive
    caller: str | None = None
    callee: str | None = None
    disposition: str | None = None
    direction: str | None = None
    queue: str | None = None
    agent: str | None = None
    after: Keyset | None = None
    only_agent: str | None = None  # an agent user's agent: only the calls it handled


def select(wanted: CdrFilter, limit: int | None = None) -> tuple[str, list[object]]:
    where = Where()
    where.add("tenant = {}", wanted.tenant)
    where.add("ended_at IS NOT NULL")
    where.add("started_at >= {}", wanted.start)
    where.add("started_at < {}", wanted.end)
    for column in ("caller", "callee", "disposition", "direction", "queue"):
        where.equal(column, getattr(wanted, column))
    for agent in (wanted.agent, wanted.only_agent):
        if agent is not None:
            where.add("{} = ANY(agents)", agent)
    if wanted.after is not None:
        where.add("(started_at, call_id) > ({}, {})", wanted.after.started_at,
                  wanted.after.call_id)
    query = (f"SELECT {', '.join(CDR_COLUMNS)} FROM cdr WHERE {where.sql()}"  # noqa: S608 - columns are constants
             " ORDER BY started_at, call_id")
    if limit is not None:
        where.args.append(limit)
        query += f" LIMIT ${len(where.args)}"
    return query, where.args


async def page(
    conn: asyncpg.Connection, wanted: CdrFilter, limit: int
) -> tuple[list[asyncpg.Record], Keyset | None]:
    """Up to `limit` rows, and the keyset to continue from (None on the last page)."""
    query, args = select(wanted, limit + 1)
    rows = list(await conn.fetch(query, *args))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Keyset(last["started_at"], last["call_id"])


async def stream(
    conn: asyncpg.Connection, wanted: CdrFilter
) -> AsyncIterator[list[asyncpg.Record]]:
    """Every matching row, in chunks, through a server-side cursor (bounded memory)."""
    query, args = select(wanted)
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(STREAM_CHUNK_ROWS):
            yield rows
