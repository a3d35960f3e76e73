"""Supervisors on live calls: monitor, whisper, barge, and leaving again.

The B2BUA worker holding the call calls the supervisor's device and routes the
audio in its conference bridge; the call records ``SupervisionStarted`` when
the device answers and ``SupervisionEnded`` when the supervisor leaves.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Path, Response

from api import call_control
from api.auth.audit import audited, path_id
from api.auth.dependencies import Principal, Tenant
from api.auth.permissions import P
from api.db import Pool, acquire
from api.problems import ProblemError, problem_responses
from api.routes.commands import CONFLICT_TYPE
from api.schemas.call_control import SupervisionPublic, SupervisionStart
from application.call_control import Action
from application.identity import store
from application.identity.model import NAME_PATTERN

TAG = {"name": "supervision", "description": (
    "Supervisors joining a live call (monitor, whisper, barge) through the B2BUA worker "
    "that holds it.")}
router = APIRouter(prefix="/v1/calls/{call_id}/supervision", tags=["supervision"])
CALL = path_id("call_id")  # the call a command acts on

CallId = Annotated[UUID, Path(description="The call's id.")]
Supervisor = Annotated[str, Path(pattern=NAME_PATTERN,
                                 description="The supervisor's username.")]


@router.post(
    "", status_code=202, summary="Join a call as a supervisor, or change mode",
    description="The platform calls the caller's own device (provisioned by an admin with "
                "`PUT /v1/auth/users/{username}/device`; 409 when there is none), never a "
                "URI from the request. 202: the device is being called (the call records "
                "the start when it answers); 200: the supervisor was on the call and "
                "switched mode.",
    responses=problem_responses(404, 409, 422, 503))
async def start_supervision(
    pool: Pool, call_id: CallId, body: SupervisionStart, response: Response,
    principal: Annotated[Principal, audited(P.SUPERVISION_ACT, "supervision.start", CALL)],
) -> SupervisionPublic:
    await call_control.check_visible(pool, principal.tenant, call_id)  # 404 before 409
    supervisor, device = await own_device(pool, principal)
    reply = await call_control.request(pool, principal.tenant, call_id, Action.SUPERVISE, {
        "supervisor": supervisor, "mode": body.mode, "device": device})
    response.status_code = reply.status
    return SupervisionPublic(call_id=call_id, supervisor=supervisor, mode=body.mode,
                             state=reply.data.get("state", "calling"), detail=reply.detail)


async def own_device(pool: asyncpg.Pool, principal: Principal) -> tuple[str, str]:
    """The caller's name and their provisioned device; 409 when they have none (an
    API key, an OIDC user unknown here, or a user whose device is not set)."""
    user = None
    if principal.kind == "user":
        with suppress(ValueError):  # an OIDC subject is not one of our user ids
            user_id = UUID(principal.actor_id)
            async with acquire(pool) as conn:
                user = await store.user_by_id(conn, user_id, principal.tenant)
    if user is None or user.device is None:
        raise ProblemError(409, "You have no device to be called on: an admin sets it with "
                           "PUT /v1/auth/users/{username}/device.", type_=CONFLICT_TYPE)
    return user.username, user.device


@router.delete(
    "/{supervisor}", status_code=204, summary="Take a supervisor off a call",
    dependencies=[audited(P.SUPERVISION_ACT, "supervision.stop", CALL)],
    responses=problem_responses(404, 409, 503))
async def stop_supervision(pool: Pool, call_id: CallId, supervisor: Supervisor,
                           tenant: Tenant) -> None:
    await call_control.request(pool, tenant, call_id, Action.UNSUPERVISE,
                               {"supervisor": supervisor})
