"""Transfers of a live call by its agent: blind to a queue, a number or a SIP URI,
or attended (consult the target, then complete or cancel).

The B2BUA worker holding the call does the SIP work; the call records
``Transferred`` (and, for a queue, ``Queued`` in the new queue) and the agent
who left starts wrap-up.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Response

from api import call_control
from api.auth.audit import audited, path_id
from api.auth.dependencies import Tenant
from api.auth.permissions import P
from api.db import Pool
from api.problems import problem_responses
from api.schemas.call_control import TransferPublic, TransferStart
from application.call_control import Action

TAG = {"name": "transfers", "description": (
    "Transfers of a live call (blind, or attended with a consultation) through the B2BUA "
    "worker that holds it.")}
router = APIRouter(prefix="/v1/calls/{call_id}/transfer", tags=["transfers"])
CALL = path_id("call_id")  # the call a command acts on

CallId = Annotated[UUID, Path(description="The call's id.")]


@router.post("", status_code=202, summary="Transfer a call",
             dependencies=[audited(P.CALLS_CONTROL, "transfers.start", CALL)],
             responses=problem_responses(404, 409, 422, 503))
async def start_transfer(pool: Pool, call_id: CallId, tenant: Tenant, body: TransferStart,
                         response: Response) -> TransferPublic:
    reply = await call_control.request(pool, tenant, call_id, Action.TRANSFER, {
        "kind": body.kind, "target_kind": body.target.kind, "target_value": body.target.value})
    response.status_code = reply.status
    return TransferPublic(call_id=call_id, state=str(reply.data.get("state", "")),
                          detail=reply.detail)


@router.post("/complete", summary="Complete an attended transfer",
             dependencies=[audited(P.CALLS_CONTROL, "transfers.complete", CALL)],
             responses=problem_responses(404, 409, 503))
async def complete_transfer(pool: Pool, call_id: CallId, tenant: Tenant) -> TransferPublic:
    reply = await call_control.request(pool, tenant, call_id, Action.COMPLETE_TRANSFER, {})
    return TransferPublic(call_id=call_id, state="connected", detail=reply.detail)


@router.delete("", summary="Cancel an attended transfer (back to the caller)",
               dependencies=[audited(P.CALLS_CONTROL, "transfers.cancel", CALL)],
               responses=problem_responses(404, 409, 503))
async def cancel_transfer(pool: Pool, call_id: CallId, tenant: Tenant) -> TransferPublic:
    reply = await call_control.request(pool, tenant, call_id, Action.CANCEL_TRANSFER, {})
    return TransferPublic(call_id=call_id, state="cancelled", detail=reply.detail)
