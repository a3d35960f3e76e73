"""Sending a call-control request to the worker that holds the call, and
turning its answer into an HTTP response (``application.call_control`` says
why the channel is PostgreSQL's LISTEN/NOTIFY).

The request goes out on a pooled connection that LISTENs for replies first,
so a reply cannot arrive before we listen. A request nobody answers within
``REPLY_TIMEOUT_S`` is about a call no live worker holds: the call's state in
the read model then says 404 (never seen) or 409 (ended); a call that looks
live but whose worker is silent is 503.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from uuid import UUID

import asyncpg

from api.auth import audit
from api.db import acquire
from api.problems import NOT_FOUND_TYPE, ProblemError
from api.queries import calls as queries
from api.routes.commands import CONFLICT_TYPE
from application.call_control import (
    REPLY_CHANNEL,
    REQUEST_CHANNEL,
    Action,
    ControlReply,
    ControlRequest,
)

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 3.0
UNAVAILABLE_TYPE = "urn:dialtone:problem:worker-unavailable"
_PROBLEM_TYPES = {404: NOT_FOUND_TYPE, 409: CONFLICT_TYPE, 503: UNAVAILABLE_TYPE}


async def request(pool: asyncpg.Pool, tenant: str, call_id: UUID, action: Action,
                  args: dict[str, str]) -> ControlReply:
    """The owning worker's 2xx reply; any refusal or silence raises a problem.
    A call the caller's tenant has no record of (another tenant's, or none) is
    404 before any worker is asked: control never crosses tenants."""
    async with acquire(pool) as conn:
        state = await queries.call_state(conn, tenant, call_id)
        if state is None:
            raise _silence(call_id, state)
        if state["status"] == "ended":
            raise ProblemError(409, f"call {call_id} has ended", type_=CONFLICT_TYPE)
        message = _message(call_id, action, args)
        reply = await _exchange(conn, message)
        if reply is None:
            state = await queries.call_state(conn, tenant, call_id)
    if reply is None:
        raise _silence(call_id, state)
    if reply.status >= 300:
        raise ProblemError(reply.status, reply.detail,
                           type_=_PROBLEM_TYPES.get(reply.status, "about:blank"))
    return reply


def _message(call_id: UUID, action: Action, args: dict[str, str]) -> ControlRequest:
    """A request with a new id, named in the command's audit row (`control`) with the
    row's request id (`origin`): the worker links the events it causes to that row."""
    control_id = uuid.uuid4().hex
    origin = audit.annotate(control=control_id) or ""
    return ControlRequest(control_id, call_id, action, args, origin)


async def check_visible(pool: asyncpg.Pool, tenant: str, call_id: UUID) -> None:
    """404 for a call the tenant has no record of, before anything else is said
    about the request (an id of another tenant answers as a missing one)."""
    async with acquire(pool) as conn:
        if await queries.call_state(conn, tenant, call_id) is None:
            raise _silence(call_id, None)


async def _exchange(conn: asyncpg.Connection, message: ControlRequest) -> ControlReply | None:
    replied: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()

    def on_reply(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            reply = ControlReply.decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("malformed call-control reply: %.200s", payload)
            return
        if reply.request_id == message.request_id and not replied.done():
            replied.set_result(reply)

    await conn.add_listener(REPLY_CHANNEL, on_reply)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", REQUEST_CHANNEL, message.encode())
        return await asyncio.wait_for(replied, REPLY_TIMEOUT_S)
    except TimeoutError:
        return None
    finally:
        await conn.remove_listener(REPLY_CHANNEL, on_reply)


def _silence(call_id: UUID, state: Any) -> ProblemError:
    if state is None:
        return ProblemError(404, f"call {call_id} not found", type_=NOT_FOUND_TYPE)
    if state["status"] == "ended":
        return ProblemError(409, f"call {call_id} has ended", type_=CONFLICT_TYPE)
    return ProblemError(503, f"no B2BUA worker answered for call {call_id}; it may be "
                             "ending, or its worker is down", type_=UNAVAILABLE_TYPE)
