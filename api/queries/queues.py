"""Queues from the queue_live projection (with queue_members, queue_calls, agent_state)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_QUEUES = "SELECT * FROM queue_live"
_MEMBERS = """
SELECT m.queue_id, m.agent_id, m.penalty, a.key, a.state, a.state_since
FROM queue_members m LEFT JOIN agent_state a USING (agent_id)
WHERE m.queue_id = ANY($1::uuid[])
ORDER BY m.queue_id, m.penalty, a.key, m.agent_id
"""
_CALLS = """
SELECT call_id, position, priority, enqueued_at, ringing_agents, transferred_from,
       GREATEST(0, extract(epoch FROM now() - enqueued_at))::float8 AS wait_s
FROM queue_calls WHERE queue_id = $1 ORDER BY position
"""


async def queues(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"{_QUEUES} ORDER BY key"))


async def queue(conn: asyncpg.Connection, queue_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(f"{_QUEUES} WHERE queue_id = $1", queue_id)
    return row


async def members(conn: asyncpg.Connection, queue_ids: list[UUID]) -> list[asyncpg.Record]:
    return list(await conn.fetch(_MEMBERS, queue_ids))


async def calls(conn: asyncpg.Connection, queue_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(_CALLS, queue_id))


async def clock(conn: asyncpg.Connection) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow("SELECT now() AS as_of")
    return row
