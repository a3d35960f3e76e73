"""Calls: in progress from `call_live`, ended ones from their `cdr` row; each query
limited to the caller's tenant (another tenant's call is not there: a 404) and, for
an agent user, to the calls whose agents name their agent (`CallScope.only_agent`)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from api.auth.ownership import CallScope
from api.queries.where import Where
from application.calls import CallService

CALL_STORE = CallService.name  # the event store (application) call_events come from

_LIVE = """
SELECT call_id, status, direction, caller, callee, target, trunk, queue, started_at,
       answered_at, on_hold_since, NULL::timestamptz AS ended_at, NULL::text AS disposition,
       last_version, agents
FROM call_live
"""

# The cdr row is also the folded state of a call the live table no longer holds.
_FROM_CDR = """
SELECT call_id, status, direction, caller, callee, final_callee AS target, trunk, queue,
       started_at, answered_at, hold_started_at AS on_hold_since, ended_at, disposition,
       last_version, agents
FROM cdr
"""

_RECORDING = "SELECT recording_ref FROM cdr"

# Each event with the actor and request id of the API command that stored it, if
# one did (audit_log.positions lists the positions a command's events got in the
# call store's log: each application numbers its own).
_TIMELINE = """
SELECT e.version, e.type, e.occurred_at, e.position, e.event_id, e.data,
       a.actor, a.actor_kind, a.request_id
FROM call_events e
LEFT JOIN LATERAL (
    SELECT actor, actor_kind, request_id FROM audit_log
    WHERE event_store = $3 AND positions @> ARRAY[e.position] AND tenant = e.tenant
    LIMIT 1
) a ON TRUE
WHERE e.call_id = $1 AND e.tenant = $2
ORDER BY e.version
"""


@dataclass(frozen=True)
class LiveFilter:
    status: str | None = None
    direction: str | None = None
    caller: str | None = None
    callee: str | None = None
    queue: str | None = None


def _scoped(scope: CallScope, call_id: UUID | None = None) -> Where:
    where = Where()
    where.equal("tenant", scope.tenant)
    where.equal("call_id", call_id)
    if scope.only_agent is not None:
        where.add("{} = ANY(agents)", scope.only_agent)
    return where


async def live_calls(conn: asyncpg.Connection, scope: CallScope,
                     wanted: LiveFilter) -> list[asyncpg.Record]:
    where = _scoped(scope)
    for column in ("status", "direction", "caller", "callee", "queue"):
        where.equal(column, getattr(wanted, column))
    query = f"{_LIVE} WHERE {where.sql()} ORDER BY started_at, call_id"
    return list(await conn.fetch(query, *where.args))


async def call_state(conn: asyncpg.Connection, scope: CallScope | str,
                     call_id: UUID) -> asyncpg.Record | None:
    """The call's state, if `scope` (or a whole tenant, named) may read it."""
    where = _scoped(CallScope(scope) if isinstance(scope, str) else scope, call_id)
    live = await conn.fetchrow(f"{_LIVE} WHERE {where.sql()}", *where.args)
    if live is not None:
        return live
    query = f"{_FROM_CDR} WHERE {where.sql()} ORDER BY started_at DESC LIMIT 1"
    return await conn.fetchrow(query, *where.args)


async def timeline(conn: asyncpg.Connection, scope: CallScope,
                   call_id: UUID) -> list[asyncpg.Record]:
    """The call's events, if `scope` may read the call (an agent: one of theirs)."""
    if scope.only_agent is not None and await call_state(conn, scope, call_id) is None:
        return []
    return list(await conn.fetch(_TIMELINE, call_id, scope.tenant, CALL_STORE))


async def recording_ref(conn: asyncpg.Connection, scope: CallScope,
                        call_id: UUID) -> tuple[bool, str | None]:
    """(whether `scope` may read the call, its recording's URI if any): recordings
    are uploaded after the call, so an ended call's CDR row says where it is."""
    where = _scoped(scope, call_id)
    query = f"{_RECORDING} WHERE {where.sql()} ORDER BY started_at DESC LIMIT 1"
    row = await conn.fetchrow(query, *where.args)
    return (False, None) if row is None else (True, row["recording_ref"])
