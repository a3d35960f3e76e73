"""Call-control requests on a live call-centre call, run on the pjsua2 thread:
supervisors joining (monitor / whisper / barge) or leaving, and transfers
(blind to a queue, a number or a SIP URI; attended, with a consultation).

Each request gets one ``ControlReply`` (HTTP-like status). What then really
happens is recorded by the Call's events as it happens: a supervisor's
``SupervisionStarted`` when their device answers, the ``Transferred`` of a
consultation when it is completed.

Why transfers are requests here and not only SIP REFERs: pjsua2 always
dials a REFER's target itself (it cannot be told "accepted, I will handle
it"), so a REFER to a queue's number would loop an INVITE through the B2BUA,
costing two more of the four call legs a process holds; and an attended REFER
with Replaces names a dialog that may live on another worker. A blind REFER to
a SIP URI still works as before (``Session.leg_transfer_request``).

Each request is handled on the call's ``CentreCall`` (``lane``: the call-centre
part of the call's ``Session``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from adapters.sip.sessions.centre_session import CentreCall
from application.b2bua.control import CallSupervisor, RefreshAudio, TakeConsulted
from application.b2bua.legs import LegRole
from application.b2bua.transfers import (
    DialAfterTransfer,
    DialConsultation,
    MoveWaiting,
    ReleaseAgent,
    Requeue,
)
from application.call_control import Action, ControlReply, ControlRequest
from domain.errors import InvalidValue

log = logging.getLogger(__name__)

Decide = Callable[[CentreCall, ControlRequest], tuple[ControlReply | None, list[Any]]]


def handle(lane: CentreCall, request: ControlRequest) -> ControlReply:
    """Decided by the call's flows (``application.b2bua.control``, ``transfers``);
    the actions performed here, in order; the reply."""
    lane.cause = request.audit  # what is emitted meanwhile carries the request out
    try:
        answer, actions = _DECIDE[request.action](lane, request)
        if _dials(actions) and lane.centre.free_legs() < 1:
            # As an attended transfer's consultation: refused while the call is intact.
            # Released first, the agent's slot frees only later, so the dial failed and
            # the caller was hung up after a 202.
            return _reply(request, 503, "no free call slot on the worker holding this call")
        for action in actions:
            answer = _perform(lane, action) or answer
    except (KeyError, ValueError, InvalidValue) as error:  # e.g. a number that is none
        return _reply(request, 422, f"bad arguments for {request.action}: {error}")
    finally:
        lane.cause = None
    assert answer is not None, "every decision replies, or asks for what replies"
    return answer


def _dials(actions: list[Any]) -> bool:
    """Whether the decision places a new leg after letting the agent go (blind)."""
    return any(isinstance(action, DialAfterTransfer) for action in actions)


def _reply(request: ControlRequest, status: int, detail: str = "", **data: object
           ) -> ControlReply:
    return ControlReply(request.request_id, status, detail, dict(data))


def _perform(lane: CentreCall, action: Any) -> ControlReply | None:
    """Perform one action; the reply, for the actions that make it."""
    match action:
        case CallSupervisor():
            return _call_supervisor(lane, action)
        case DialConsultation(uri=uri, label=label, request=request):
            return _consult(lane, request, uri, label)
        case ReleaseAgent():
            lane.release_agent()
        case Requeue(queue_id=queue_id, came_from=came_from):
            lane.requeue(queue_id, came_from)
        case DialAfterTransfer(uri=uri):
            lane.dial_after_transfer(uri)
        case MoveWaiting(command=command):
            lane.submit(command)
        case TakeConsulted(leg=leg):
            lane.take_consulted(leg)  # its state now reaches the session as the other party's
        case RefreshAudio():
            lane.refresh_audio()
        case _:
            lane.perform([action])  # the call's own actions (Emit, Bridge, HangUp...)
    return None


def _call_supervisor(lane: CentreCall, call: CallSupervisor) -> ControlReply:
    leg = lane.session.ctx.new_leg(LegRole.SUPERVISOR)
    leg.listener = lane.session
    if not leg.place(call.device):
        leg.detach()
        return lane.control.not_callable(call.request, call.device)
    return lane.control.supervisor_called(call, leg)


def _consult(lane: CentreCall, request: ControlRequest, uri: str, label: str
             ) -> ControlReply:
    if lane.centre.free_legs() < 1:
        return _reply(request, 503, "no free call slot on the worker holding this call")
    leg = lane.session.ctx.new_leg(LegRole.CALLEE)
    leg.listener = lane.session
    if not leg.place(uri):
        leg.detach()
        return _reply(request, 502, f"cannot call {uri}")
    log.info("call %s: consultation with %s", lane.call_id, uri)
    lane.perform(lane.consultation.start(label, leg))  # the caller waits, with music
    return _reply(request, 202, f"consulting {label}", state="consulting")


_DECIDE: dict[Action, Decide] = {
    Action.SUPERVISE: lambda s, r: s.control.supervise(r, s.cause),
    Action.UNSUPERVISE: lambda s, r: s.control.unsupervise(r),
    Action.TRANSFER: lambda s, r: s.transfers.transfer(r),
    Action.COMPLETE_TRANSFER: lambda s, r: s.control.complete(r),
    Action.CANCEL_TRANSFER: lambda s, r: s.control.cancel(r),
}
