"""Who did what: `audited(permission, action, aggregate)`, the dependency every
command route declares, and the request id every response carries.

`audited` lets the caller in as `require(permission)` does, runs the route, then
writes one `audit_log` row (actor, actor kind, tenant, action, outcome, the
aggregate acted on, the request id, and the store positions of the events the
command stored: `application.recorded`) before the response leaves: a client
that got its answer finds the row. A refused command (404, 409, 422...) is recorded
too, with the status it got; a caller refused by `require` (401, 403) never
reached the route and is not.

A route may add to the row's detail while it runs (`annotate`): a call-control
command names the id of the request it sent to the B2BUA worker, by which the
worker later adds the positions of the events it stored for it
(`application.call_control`).
"""

# No `from __future__ import annotations`: FastAPI reads the closure's
# `Annotated[Principal, require(permission)]` at runtime.

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from api.auth.dependencies import Principal, caller_tenant, new_request_id, require
from api.auth.permissions import Permission
from api.db import Pool, acquire
from api.middleware import HttpMiddleware
from application import log_context, recorded
from application.identity import store
from domain.errors import DomainError

REQUEST_ID_HEADER = "X-Request-ID"

# How a route names the aggregate it acts on, from the request (path or body).
AggregateOf = Callable[[Request], Awaitable[UUID | None]]
# The id of the aggregate named `key` in `tenant` (keys are per tenant).
IdFor = Callable[[str, str], UUID]


@dataclass
class _Open:
    """The audit row of the command running now, before it is written."""

    request_id: str
    detail: dict[str, str] = field(default_factory=dict)
    status: int | None = None  # a success other than 200 (a redirect), set by `answered`
    aggregate_id: UUID | None = None  # one the route made itself, set by `created`


_open: ContextVar[_Open | None] = ContextVar("audit_row", default=None)


def annotate(**fields: str) -> str | None:
    """Add `fields` to the detail of the running command's audit row; the row's
    request id, or None outside an audited command (nothing is recorded then)."""
    row = _open.get()
    if row is None:
        return None
    row.detail.update(fields)
    return row.request_id


def answered(status: int) -> None:
    """Record `status` as the running command's (a route returning a 3xx or 2xx
    response itself, which `audited` does not see, would be recorded as 200)."""
    row = _open.get()
    if row is not None:
        row.status = status


def created(aggregate_id: UUID) -> None:
    """Name the aggregate the running command made, when its id is the route's to
    choose (a webhook subscription) rather than derived from the path or body."""
    row = _open.get()
    if row is not None:
        row.aggregate_id = aggregate_id


def path_id(name: str) -> AggregateOf:
    """The aggregate is the UUID in path parameter `name` (a call)."""
    async def of(request: Request) -> UUID | None:
        try:
            return UUID(str(request.path_params[name]))
        except (KeyError, ValueError):
            return None
    return of


def path_key(name: str, id_for: IdFor) -> AggregateOf:
    """The aggregate whose id derives from path parameter `name` (an agent's key)
    in the caller's tenant."""
    async def of(request: Request) -> UUID | None:
        key = request.path_params.get(name)
        return None if key is None else _id_or_none(id_for, str(key), request)
    return of


def body_key(name: str, id_for: IdFor) -> AggregateOf:
    """The aggregate whose id derives from field `name` of the JSON body (a create).
    The body was already read and validated by the route; this reads Starlette's copy."""
    async def of(request: Request) -> UUID | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        key = body.get(name) if isinstance(body, dict) else None
        return _id_or_none(id_for, key, request) if isinstance(key, str) else None
    return of


def _id_or_none(id_for: IdFor, key: str, request: Request) -> UUID | None:
    """The id of `key` in the caller's tenant; None for a key the domain refuses
    (the command was refused too)."""
    try:
        return id_for(key, caller_tenant(request))
    except (DomainError, ValueError):
        return None


def audited(permission: Permission | Any, action: str,
            aggregate: AggregateOf | None = None) -> Any:
    """`require(permission)` (or another gate, e.g. `own_agent_or(P.AGENTS_WRITE)`),
    then one audit row for what the route did.

    Declare it next to the route, `dependencies=[audited(P.X, "agents.login", AGENT)]`,
    or take the principal: `principal: Annotated[Principal, audited(...)]`. It runs
    around the route function (scope "function"), so the row is written before
    the response is sent."""
    gate = require(permission) if isinstance(permission, Permission) else permission

    async def record(request: Request, pool: Pool,
                     principal: Annotated[Principal, gate]
                     ) -> AsyncIterator[Principal]:
        outcome, status = "ok", 200
        row = _Open(principal.request_id)
        token = _open.set(row)
        with recorded.collecting() as stored:
            try:
                yield principal
                status = row.status or status
            except HTTPException as exc:
                outcome, status = "refused", exc.status_code
                raise
            except RequestValidationError:
                outcome, status = "refused", 422
                raise
            except Exception:
                outcome, status = "failed", 500
                raise
            finally:
                _open.reset(token)
                await _write(request, pool, principal, action, (outcome, status), aggregate,
                             stored, row)

    return Depends(record, scope="function")


async def _write(request: Request, pool: Any, principal: Principal, action: str,
                 result: tuple[str, int], aggregate: AggregateOf | None,
                 stored: recorded.Collected, row: _Open) -> None:
    outcome, status = result
    named = await aggregate(request) if aggregate is not None else None
    aggregate_id = named or row.aggregate_id
    detail: dict[str, Any] = {**row.detail, "status": status, "method": request.method,
                              **{k: _storable(str(v)) for k, v in request.path_params.items()}}
    async with acquire(pool) as conn:
        await store.record_audit(conn, store.AuditEntry(
            action=action, outcome=outcome, request_id=principal.request_id,
            actor=principal.actor_id, actor_kind=principal.kind, tenant=principal.tenant,
            aggregate_id=aggregate_id, detail=detail,
            event_store=stored.store, positions=tuple(stored.positions)))


def _storable(text: str) -> str:
    """`text` with any NUL replaced (U+FFFD): a refused path like `/v1/agents/a%00b/pause`
    is recorded as refused, where jsonb, which cannot hold a NUL, would fail the row."""
    return text.replace("\x00", "\ufffd")


class RequestIdMiddleware(HttpMiddleware):
    """Gives each HTTP request its id (kept in the request's state, where the
    `request_id` dependency finds it) and echoes it in the `X-Request-ID` response
    header, so a caller can quote it and an admin find it in `GET /v1/audit`."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = new_request_id(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        with log_context.bound(request_id=rid):  # on every log line of this request
            await self.app(scope, receive, send_with_id)


async def record_done(conn: Any, principal: Principal, rid: str, action: str,
                      detail: dict[str, Any]) -> None:
    """The audit row of an administrative change a route made itself (users, keys, SIP
    credentials): done, by this caller, in its tenant, under this request id."""
    await store.record_audit(conn, store.AuditEntry(
        action=action, outcome="ok", request_id=rid, actor=principal.actor_id,
        actor_kind=principal.kind, tenant=principal.tenant, detail=detail))
