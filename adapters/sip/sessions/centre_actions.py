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

from adapters.sip.pjsua.legs import Leg
from adapters.sip.sessions.centre_session import CentreSession
from application.b2bua import actions as act
from application.b2bua.legs import LegRole
from application.b2bua.supervision import Watch
from application.b2bua.transfers import (
    Consult,
    DialAfterTransfer,
    MoveWaiting,
    ReleaseAgent,
    Requeue,
)
from application.call_control import Action, ControlReply, ControlRequest
from domain.call import SupervisionMode

log = logging.getLogger(__name__)

Handler = Callable[[CentreSession, ControlRequest], ControlReply]


def handle(session: CentreSession, request: ControlRequest) -> ControlReply:
    handler = _HANDLERS[request.action]
    session.cause = request.audit  # what the handler emits carries the request out
    try:
        return handler(session, request)
    except (KeyError, ValueError) as error:
        return _reply(request, 422, f"bad arguments for {request.action}: {error}")
    finally:
        session.cause = None


def _reply(request: ControlRequest, status: int, detail: str = "", **data: object
           ) -> ControlReply:
    return ControlReply(request.request_id, status, detail, dict(data))


def _not_talking(session: CentreSession, request: ControlRequest) -> ControlReply | None:
    return session.transfers.not_talking(request)


# -- supervision -----------------------------------------------------------------------------


def supervise(session: CentreSession, request: ControlRequest) -> ControlReply:
    refused = _not_talking(session, request)
    if refused is not None:
        return refused
    supervisor, device = request.args["supervisor"], request.args["device"]
    mode = SupervisionMode(request.args["mode"])
    watch = session.supervision.of(supervisor)
    if watch is not None:
        if watch.device != device:
            return _reply(request, 409, f"supervisor {supervisor} is on the call from "
                                        f"{watch.device}")
        session.perform(session.supervision.switch(watch, mode, session.cause))
        return _reply(request, 200, f"mode is now {mode}", state=_state(watch), mode=mode)
    if session.centre.free_legs() < 1:
        return _reply(request, 503, "no free call slot on the worker holding this call")
    leg = session.ctx.new_leg(LegRole.SUPERVISOR)
    leg.listener = session
    if not device.startswith(("sip:", "sips:")) or not leg.place(device):
        leg.detach()
        return _reply(request, 422, f"cannot call device {device!r}")
    session.supervision.calling(supervisor, device, mode, leg, joined_by=request.audit)
    log.info("call %s: calling supervisor %s at %s (%s)", session.call_id, supervisor,
             device, mode)
    return _reply(request, 202, "calling the supervisor's device", state="calling", mode=mode)


def unsupervise(session: CentreSession, request: ControlRequest) -> ControlReply:
    supervisor = request.args["supervisor"]
    watch = session.supervision.of(supervisor)
    if watch is None:
        return _reply(request, 404, f"supervisor {supervisor} is not on call {session.call_id}")
    # Its leg's DISCONNECTED records SupervisionEnded and re-routes the audio.
    session.perform(session.supervision.leave(watch, request.audit))
    return _reply(request, 200, "supervisor leaving")


def _state(watch: Watch[Leg]) -> str:
    return "joined" if watch.joined else "calling"


# -- transfers -------------------------------------------------------------------------------


def transfer(session: CentreSession, request: ControlRequest) -> ControlReply:
    """Decided by the call's flow (``application.b2bua.transfers``); performed here."""
    answer, actions = session.transfers.transfer(request)
    for action in actions:
        match action:
            case Consult(uri=uri, label=label):
                answer = _consult(session, request, uri, label)
            case ReleaseAgent():
                session.release_agent()
            case Requeue(queue_id=queue_id, came_from=came_from):
                session.requeue(queue_id, came_from)
            case DialAfterTransfer(uri=uri):
                session.dial_after_transfer(uri)
            case MoveWaiting(command=command):
                session.submit(command)
            case act.Emit(command=command):
                session.emit(command)
    assert answer is not None, "every transfer decision replies, or consults (which replies)"
    return answer


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


def complete_transfer(session: CentreSession, request: ControlRequest) -> ControlReply:
    consult = session.consult
    if consult is None or not consult.answered:
        return _reply(request, 409, "no answered consultation to complete")
    consulted, records = session.consultation.complete()
    session.perform(records)
    session.release_agent()
    session.b = consulted  # its state now reaches the session as the other party's
    log.info("call %s: attended transfer to %s completed", session.call_id, consult.label)
    session.refresh_audio()
    return _reply(request, 200, f"connected to {consult.label}")


def cancel_transfer(session: CentreSession, request: ControlRequest) -> ControlReply:
    consult = session.consult
    if consult is None:
        return _reply(request, 409, "no consultation in progress")
    session.perform(session.consultation.cancel(request.audit))  # its end resumes the caller
    return _reply(request, 200, "consultation cancelled")


_HANDLERS: dict[Action, Handler] = {
    Action.SUPERVISE: supervise,
    Action.UNSUPERVISE: unsupervise,
    Action.TRANSFER: transfer,
    Action.COMPLETE_TRANSFER: complete_transfer,
    Action.CANCEL_TRANSFER: cancel_transfer,
}
