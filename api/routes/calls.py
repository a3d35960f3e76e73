"""Calls: the ones in progress, one call's state, one call's event timeline.

Callers with `calls:read` read every call of their tenant; an agent user only
the calls their agent handles or handled (`own_calls_or`), any other is 404."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query

from api.auth.ownership import Scope, own_calls_or
from api.auth.permissions import P
from api.db import Pool, acquire
from api.problems import NotFoundProblem, problem_responses
from api.queries import calls as queries
from api.schemas.calls import CallEventPublic, CallPublic, CallsPublic, CallTimelinePublic
from api.schemas.text import text_query
from domain.values import CallStatus, Direction

TAG = {"name": "calls", "description": "Calls in progress and the history of any call."}
router = APIRouter(prefix="/v1/calls", tags=["calls"])

CallId = Annotated[UUID, Path(description="The call's id (a UUID).")]


async def live_filter(
    *,
    status: Annotated[CallStatus | None, Query(description="Current call status.")] = None,
    direction: Annotated[Direction | None, Query()] = None,
    caller: Annotated[str | None, text_query(description="Exact calling number.")] = None,
    callee: Annotated[str | None, text_query(description="Exact number dialled.")] = None,
    queue: Annotated[str | None, text_query(description="Queue the call is in or came through.")]
    = None,
) -> queries.LiveFilter:
    """Filters on calls in progress; each one given must match exactly."""
    return queries.LiveFilter(status=status, direction=direction, caller=caller,
                              callee=callee, queue=queue)


LiveFilterDep = Annotated[queries.LiveFilter, Depends(live_filter)]


@router.get(
    "",
    dependencies=[own_calls_or(P.CALLS_READ)],
    summary="List calls in progress",
    description="Calls not ended yet, oldest first. Every filter is an exact match. "
    "An agent user sees only the calls their agent is on.",
    responses=problem_responses(422),
)
async def list_calls(pool: Pool, scope: Scope, wanted: LiveFilterDep) -> CallsPublic:
    async with acquire(pool) as db:
        rows = await queries.live_calls(db, scope, wanted)
    data = [CallPublic.model_validate(dict(row)) for row in rows]
    return CallsPublic(data=data, count=len(data))


@router.get(
    "/{call_id}",
    dependencies=[own_calls_or(P.CALLS_READ)],
    summary="Get a call's current state",
    description="From the live table while the call is in progress, from its CDR once ended.",
    responses=problem_responses(404, 422),
)
async def read_call(pool: Pool, call_id: CallId, scope: Scope) -> CallPublic:
    async with acquire(pool) as db:
        row = await queries.call_state(db, scope, call_id)
    if row is None:
        raise NotFoundProblem("call", call_id)
    return CallPublic.model_validate(dict(row))


@router.get(
    "/{call_id}/timeline",
    dependencies=[own_calls_or(P.CALLS_READ)],
    summary="Get a call's events in order",
    description="Every event of the call, ordered by version (the call's own sequence), "
    "each with the actor and request id of the API command that stored it, if one did.",
    responses=problem_responses(404, 422),
)
async def read_timeline(pool: Pool, call_id: CallId, scope: Scope) -> CallTimelinePublic:
    async with acquire(pool) as db:
        rows = await queries.timeline(db, scope, call_id)
    if not rows:
        raise NotFoundProblem("call", call_id)
    events = [CallEventPublic.model_validate(dict(row)) for row in rows]
    return CallTimelinePublic(call_id=call_id, events=events)
