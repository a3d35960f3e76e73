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
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from adapters.sip.sessions.centre_session import CentreSession
from application.b2bua.control import CallSupervisor, RefreshAudio, TakeConsulted
from application.b2bua.legs import LegRole
from application.b2bua.transfers import (
    Consult,
    DialAfterTransfer,
    MoveWaiting,
    ReleaseAgent,
    Requeue,
)
from application.call_control import Action, ControlReply, ControlRequest

log = logging.getLogger(__name__)

Decide = Callable[[CentreSession, ControlRequest], tuple[ControlReply | None, list[Any]]]


def handle(session: CentreSession, request: ControlRequest) -> ControlReply:
    """Decided by the call's flows (``application.b2bua.control``, ``transfers``);
    the actions performed here, in order; the reply."""
    session.cause = request.audit  # what is emitted meanwhile carries the request out
    try:
        answer, actions = _DECIDE[request.action](session, request)
        for action in actions:
            answer = _perform(session, action) or answer
    except (KeyError, ValueError) as error:
        return _reply(request, 422, f"bad arguments for {request.action}: {error}")
    finally:
        session.cause = None
    assert answer is not None, "every decision replies, or asks for what replies"
    return answer


def _reply(request: ControlRequest, status: int, detail: str = "", **data: object
           ) -> ControlReply:
    return ControlReply(request.request_id, status, detail, dict(data))


def _perform(session: CentreSession, action: Any) -> ControlReply | None:
    """Perform one action; the reply, for the actions that make it."""
    match action:
        case CallSupervisor():
            return _call_supervisor(session, action)
        case Consult(uri=uri, label=label, request=request):
            return _consult(session, request, uri, label)
        case ReleaseAgent():
            session.release_agent()
        case Requeue(queue_id=queue_id, came_from=came_from):
            session.requeue(queue_id, came_from)
        case DialAfterTransfer(uri=uri):
            session.dial_after_transfer(uri)
        case MoveWaiting(command=command):
            session.submit(command)
        case TakeConsulted(leg=leg):
            session.b = leg  # its state now reaches the session as the other party's
        case RefreshAudio():
            session.refresh_audio()
        case _:
            session.perform([action])  # the call's own actions (Emit, Bridge, HangUp...)
    return None


def _call_supervisor(session: CentreSession, call: CallSupervisor) -> ControlReply:
    leg = session.ctx.new_leg(LegRole.SUPERVISOR)
    leg.listener = session
    if not leg.place(call.device):
        leg.detach()
        return session.control.not_callable(call.request, call.device)
    return session.control.supervisor_called(call, leg)


def _consult(session: CentreSession, request: ControlRequest, uri: str, label: str
             ) -> ControlReply:
    if session.centre.free_legs() < 1:
        return _reply(request, 503, "no free call slot on the worker holding this call")
    leg = session.ctx.new_leg(LegRole.CALLEE)
    leg.listener = session
    if not leg.place(uri):
        leg.detach()
        return _reply(request, 502, f"cannot call {uri}")
    log.info("call %s: consultation with %s", session.call_id, uri)
    session.perform(session.consultation.start(label, leg))  # the caller waits, with music
    return _reply(request, 202, f"consulting {label}", state="consulting")


_DECIDE: dict[Action, Decide] = {
    Action.SUPERVISE: lambda s, r: s.control.supervise(r, s.cause),
    Action.UNSUPERVISE: lambda s, r: s.control.unsupervise(r),
    Action.TRANSFER: lambda s, r: s.transfers.transfer(r),
    Action.COMPLETE_TRANSFER: lambda s, r: s.control.complete(r),
    Action.CANCEL_TRANSFER: lambda s, r: s.control.cancel(r),
}
