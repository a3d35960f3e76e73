"""Supervisors on live calls: monitor, whisper, barge, and leaving again.

The B2BUA worker holding the call calls the supervisor's device and routes the
audio in its conference bridge; the call records ``SupervisionStarted`` when
the device answers and ``SupervisionEnded`` when the supervisor leaves.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Response

from api import call_control
from api.auth.audit import audited, path_id
from api.auth.permissions import P
from api.db import Pool
from api.problems import problem_responses
from api.schemas.call_control import SupervisionPublic, SupervisionStart
from api.schemas.targets import KEY_PATTERN
from application.call_control import Action

TAG = {"name": "supervision", "description": (
    "Supervisors joining a live call (monitor, whisper, barge) through the B2BUA worker "
    "that holds it.")}
router = APIRouter(prefix="/v1/calls/{call_id}/supervision", tags=["supervision"])
CALL = path_id("call_id")  # the call a command acts on

CallId = Annotated[UUID, Path(description="The call's id.")]
Supervisor = Annotated[str, Path(pattern=KEY_PATTERN, description="The supervisor's name.")]


@router.post(
    "", status_code=202, summary="Join a call as a supervisor, or change mode",
    dependencies=[audited(P.SUPERVISION_ACT, "supervision.start", CALL)],
    description="202: the supervisor's device is being called (the call records the start "
                "when it answers); 200: the supervisor was on the call and switched mode.",
    responses=problem_responses(404, 409, 422, 503))
async def start_supervision(pool: Pool, call_id: CallId, body: SupervisionStart,
                            response: Response) -> SupervisionPublic:
    reply = await call_control.request(pool, call_id, Action.SUPERVISE, {
        "supervisor": body.supervisor, "mode": body.mode, "device": body.device})
    response.status_code = reply.status
    return SupervisionPublic(call_id=call_id, supervisor=body.supervisor, mode=body.mode,
                             state=reply.data.get("state", "calling"), detail=reply.detail)


@router.delete(
    "/{supervisor}", status_code=204, summary="Take a supervisor off a call",
    dependencies=[audited(P.SUPERVISION_ACT, "supervision.stop", CALL)],
    responses=problem_responses(404, 409, 503))
async def stop_supervision(pool: Pool, call_id: CallId, supervisor: Supervisor) -> None:
    await call_control.request(pool, call_id, Action.UNSUPERVISE, {"supervisor": supervisor})
