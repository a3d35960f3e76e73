"""The tenant's whole event history, in store order, for analysts who want
everything (`GET /v1/events`). Where it is read from, and why: api/queries/events.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.problems import problem_responses
from api.queries import events as queries
from api.queries.events import EventLog
from api.schemas.events import EventPublic, EventsPublic
from api.schemas.text import text_query

TAG = {"name": "events", "description": "The stored events of every aggregate, in store order."}
router = APIRouter(prefix="/v1/events", tags=["events"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_POSITION = 2**63 - 1  # positions are PostgreSQL bigints


@router.get(
    "",
    dependencies=[require(P.HISTORY_READ)],
    summary="List the tenant's events in store order",
    description="The events of one notification log (`log`: `calls` for calls, `callcentre` "
    "for agents, queues, IVR menus, numbers and dialplans; each numbers its own positions) "
    "after position `after`, in position order, with the API command that stored each, if "
    "one did. Page with `next_after` (or the `Link: rel=\"next\"` header); on the last page "
    "poll again from the last position seen. Events appear once projected (normally within "
    "milliseconds of being stored).",
    responses=problem_responses(422),
)
async def list_events(
    *,
    request: Request, response: Response, pool: Pool, tenant: Tenant,
    log: Annotated[EventLog, Query(description="The notification log to read.")],
    after: Annotated[int, Query(ge=0, le=MAX_POSITION, description=(
        "Only events after this position (`next_after` of the previous page); 0: from "
        "the first."))] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=(
        f"Page size, 1..{MAX_LIMIT}."))] = DEFAULT_LIMIT,
    kind: Annotated[str | None, text_query(description=(
        "Only events of this aggregate kind (`call`, `agent`, `queue`, `ivrmenu`, `number`, "
        "`dialplan`)."))] = None,
    type: Annotated[str | None, text_query(description=(
        "Only events of this exact type, e.g. `dialtone.agent.paused.v1`."))] = None,
) -> EventsPublic:
    wanted = queries.EventFilter(tenant=tenant, log=log, kind=kind, type=type)
    async with acquire(pool) as db:
        rows, next_after = await queries.page(db, wanted, after, limit)
    if next_after is not None:
        url = request.url.include_query_params(after=next_after)
        response.headers["Link"] = f'<{url}>; rel="next"'
    data = [EventPublic.model_validate(dict(row)) for row in rows]
    return EventsPublic(data=data, count=len(data), next_after=next_after)
