"""Queues from the queue_live projection (with queue_members, queue_calls, agent_state),
each query limited to the caller's tenant."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_QUEUES = "SELECT * FROM queue_live"
_MEMBERS = """
SELECT m.queue_id, m.agent_id, m.penalty, a.key, a.state, a.state_since
FROM queue_members m LEFT JOIN agent_state a USING (agent_id)
WHERE m.queue_id = ANY($1::uuid[]) AND m.tenant = $2
ORDER BY m.queue_id, m.penalty, a.key, m.agent_id
"""
_CALLS = """
SELECT call_id, position, priority, enqueued_at, ringing_agents, transferred_from,
       GREATEST(0, extract(epoch FROM now() - enqueued_at))::float8 AS wait_s
FROM queue_calls WHERE queue_id = $1 AND tenant = $2 ORDER BY position
"""


async def queues(conn: asyncpg.Connection, tenant: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"{_QUEUES} WHERE tenant = $1 ORDER BY key", tenant))


async def queue(conn: asyncpg.Connection, tenant: str,
                queue_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"{_QUEUES} WHERE queue_id = $1 AND tenant = $2", queue_id, tenant)
    return row


async def members(conn: asyncpg.Connection, tenant: str,
                  queue_ids: list[UUID]) -> list[asyncpg.Record]:
    return list(await conn.fetch(_MEMBERS, queue_ids, tenant))


async def calls(conn: asyncpg.Connection, tenant: str, queue_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(_CALLS, queue_id, tenant))


async def clock(conn: asyncpg.Connection) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow("SELECT now() AS as_of")
    return row
