"""Agents from the agent_state and agent_state_intervals projections, each query
limited to the caller's tenant (another tenant's agent is not there: a 404)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from api.queries.where import Where

_AGENTS = """
SELECT agent_id AS id, key, name, state, state_since, device_uri, pause_reason,
       current_call_id, current_queue_id, offer_deadline, wrap_up_until, skills,
       auto_pause_after, missed_offers, calls_handled, last_version AS version
FROM agent_state
"""

_INTERVALS = """
SELECT state, reason, call_id, queue_id, started_at, ended_at, duration_s
FROM agent_state_intervals
WHERE agent_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)
  AND tenant = $4
ORDER BY started_at, started_version
"""

_SKILLS = """
WITH held AS (SELECT jsonb_object_keys(skills) AS skill FROM agent_state WHERE tenant = $1),
     required AS (SELECT jsonb_object_keys(required_skills) AS skill FROM queue_live
                  WHERE tenant = $1)
SELECT skill, (SELECT count(*) FROM held h WHERE h.skill = s.skill) AS agents,
       (SELECT count(*) FROM required r WHERE r.skill = s.skill) AS queues
FROM (SELECT skill FROM held UNION SELECT skill FROM required) s
ORDER BY skill
"""


async def agents(conn: asyncpg.Connection, tenant: str, state: str | None,
                 queue_id: UUID | None) -> list[asyncpg.Record]:
    where = Where()
    where.equal("tenant", tenant)
    where.equal("state", state)
    if queue_id is not None:
        where.add("agent_id IN (SELECT agent_id FROM queue_members WHERE queue_id = {})",
                  queue_id)
    return list(await conn.fetch(f"{_AGENTS} WHERE {where.sql()} ORDER BY key", *where.args))


async def agent(conn: asyncpg.Connection, tenant: str,
                agent_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"{_AGENTS} WHERE agent_id = $1 AND tenant = $2", agent_id, tenant)
    return row


async def intervals(conn: asyncpg.Connection, tenant: str, agent_id: UUID, start: datetime,
                    end: datetime) -> list[asyncpg.Record]:
    return list(await conn.fetch(_INTERVALS, agent_id, start, end, tenant))


async def skills(conn: asyncpg.Connection, tenant: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SKILLS, tenant))
