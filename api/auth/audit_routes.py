"""`GET /v1/audit`: who did what in the caller's tenant (admin), newest first,
filtered by actor, aggregate, event position and time range, in keyset pages."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth.dependencies import Principal, require
from api.auth.permissions import Permission
from api.db import Pool, acquire
from api.problems import invalid, problem_responses
from api.schemas.text import Instant, minus, text_query
from application.identity import store

TAG = {"name": "audit", "description": "Who did what: logins, admin actions, commands and "
       "supervision, with the actor and the request id."}
router = APIRouter(prefix="/v1/audit", tags=["audit"])

DEFAULT_RANGE = timedelta(days=7)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_POSITION = 2**63 - 1  # PostgreSQL bigint
# The applications whose commands are audited with their events' positions; the
# call store is listed too, as the call timeline's events are positions there.
EventStoreName = Literal["CallCentreService", "CallService"]


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str | None = Field(description="User id, API key id, or null (unknown login).")
    actor_kind: str = Field(description="user | key | anonymous")
    action: str = Field(description="e.g. auth.login, agents.pause, supervision.start")
    outcome: str = Field(description="ok, refused (with its status in detail), denied...")
    aggregate_id: UUID | None
    request_id: str = Field(description="The request's X-Request-ID (echoed to the caller).")
    detail: dict[str, Any]
    event_store: str | None = Field(description="The event store (application) whose "
                                    "positions `positions` are; null when nothing was stored.")
    positions: list[int] = Field(description="Store positions of the events this command "
                                 "stored (the `position` of a timeline event, the `sequence` "
                                 "of its CloudEvent), in the order they were stored.")


class AuditPublic(BaseModel):
    data: list[AuditEntryPublic]
    count: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([last_id]).encode()).rstrip(b"=").decode()


def _after(cursor: str) -> int:
    try:
        (last_id,) = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise invalid("cursor", "not a cursor returned by this API") from None
    if not isinstance(last_id, int) or isinstance(last_id, bool) \
            or not 0 < last_id <= MAX_POSITION:  # a PostgreSQL bigint id
        raise invalid("cursor", "not a cursor returned by this API")
    return last_id


@router.get(
    "", summary="List the audit log",
    description="Entries of the caller's tenant whose `at` is in [from, to) (default: the "
    "last 7 days), newest first; page with `next_cursor`.",
    responses=problem_responses(422))
async def list_audit(
    pool: Pool, request: Request, response: Response,
    principal: Annotated[Principal, require(Permission.AUDIT_READ)],
    actor: Annotated[str | None, text_query(max_length=100,
                                            description="A user id or API key id.")] = None,
    aggregate: Annotated[UUID | None, Query(description="The aggregate acted on.")] = None,
    position: Annotated[int | None, Query(
        ge=1, le=MAX_POSITION, description="The command that stored the event at this store "
        "position of `event_store`.")] = None,
    event_store: Annotated[EventStoreName, Query(
        description="The event store `position` is in (each numbers its own events).")]
    = "CallCentreService",
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, text_query(description="`next_cursor` of the previous page.")]
    = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditPublic:
    end = end or datetime.now(UTC)
    start = start or minus(end, DEFAULT_RANGE)
    if start > end:
        raise invalid("from", "must not be after `to`")
    query = store.AuditQuery(principal.tenant, start, end, actor, aggregate,
                             None if cursor is None else _after(cursor),
                             None if position is None else (position, event_store))
    async with acquire(pool) as conn:
        rows = await store.list_audit(conn, query, limit + 1)
    data = [AuditEntryPublic.model_validate(row) for row in rows[:limit]]
    next_cursor = _cursor(data[-1].id) if len(rows) > limit else None
    if next_cursor is not None:  # as /v1/cdrs and /v1/events announce theirs
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return AuditPublic(data=data, count=len(data), next_cursor=next_cursor)
