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
from uuid import UUID

from adapters.sip.pjsua.legs import Leg
from adapters.sip.sessions.centre_front import Stage
from adapters.sip.sessions.centre_session import CentreSession
from adapters.sip.store.centre_link import Outcome
from application.b2bua.legs import LegRole
from application.b2bua.plain import Phase, now
from application.b2bua.supervision import Watch
from application.call_control import Action, ControlReply, ControlRequest
from domain.addressing import Target, TargetKind
from domain.call import SupervisionMode, TransferKind
from domain.call_commands import TransferCall
from domain.errors import InvalidValue
from domain.queue import Queue

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
    if session.phase is Phase.ANSWERED and session.b is not None:
        return None
    return _reply(request, 409, f"call {session.call_id} is not connected to anyone "
                                f"(it is {session.stage.value})")


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
    kind = TransferKind(request.args.get("kind", "blind"))
    target_kind, value = request.args["target_kind"], request.args["target_value"]
    if session.stage is Stage.QUEUE and kind is TransferKind.BLIND:
        return _move_waiting(session, request, target_kind, value)
    refused = _not_talking(session, request) or _busy(session, request)
    if refused is not None:
        return refused
    return _move_talking(session, request, kind, target_kind, value)


def _move_talking(session: CentreSession, request: ControlRequest, kind: TransferKind,
                  target_kind: str, value: str) -> ControlReply:
    """The agent hands the caller on: blind (the agent leaves now) or attended."""
    if target_kind == TargetKind.QUEUE:
        if kind is TransferKind.ATTENDED:
            return _reply(request, 422, "an attended transfer goes to a number or a URI")
        return _to_queue(session, request, value)
    uri = _uri(session, target_kind, value)
    if uri is None:
        return _reply(request, 404, f"no route to {target_kind} {value!r}")
    label = uri if target_kind == "uri" else f"number:{value}"
    if kind is TransferKind.BLIND:
        session.emit(TransferCall(session.call_id, now(), TransferKind.BLIND, label))
        log.info("call %s: blind transfer to %s", session.call_id, uri)
        session.release_agent()
        session.dial_after_transfer(uri)
        return _reply(request, 202, f"calling {label}", state="calling")
    return _consult(session, request, uri, label)


def _move_waiting(session: CentreSession, request: ControlRequest, target_kind: str,
                  value: str) -> ControlReply:
    """A caller still waiting is moved by the queue itself (``transfer_call``: the
    queue counts it transferred out, a destination queue transferred in); the
    session follows the ``CallTransferredOut`` event like an overflow."""
    if target_kind == TargetKind.QUEUE:
        queue_id = _queue_id(session, value)
        if queue_id is None:
            return _reply(request, 404, f"queue {value} not found")
        target = Target.queue(queue_id)
    elif target_kind == TargetKind.NUMBER:
        target = Target.number(value)
    else:
        return _reply(request, 409, "a caller waiting in a queue moves to a queue or a number")
    from_queue, call_id, at = session.queue_id, session.call_id, now()
    assert from_queue is not None
    session.moved_by = request.audit  # the session follows the move: its events are ours

    def refused(outcome: Outcome[Any]) -> None:
        if not outcome.ok:
            session.moved_by = None

    session.centre.link.submit(f"move {call_id} to {target}",
                               lambda s: s.transfer_call(from_queue, call_id, target, at),
                               refused)
    return _reply(request, 202, f"moving the waiting caller to {target_kind} {value}",
                  state="queued" if target_kind == TargetKind.QUEUE else "calling")


def _busy(session: CentreSession, request: ControlRequest) -> ControlReply | None:
    if session.consult is not None or session.transfer is not None:
        return _reply(request, 409, f"call {session.call_id} is being transferred already")
    if session.held_by is not None:
        return _reply(request, 409, f"call {session.call_id} is on hold")
    return None


def _uri(session: CentreSession, kind: str, value: str) -> str | None:
    if kind == "uri":
        return value if value.startswith(("sip:", "sips:")) and " " not in value else None
    if kind == TargetKind.NUMBER:
        return session.centre.resolve_number(value)
    raise ValueError(f"target_kind must be queue, number or uri, not {kind!r}")


def _to_queue(session: CentreSession, request: ControlRequest, key_or_id: str) -> ControlReply:
    queue_id = _queue_id(session, key_or_id)
    if queue_id is None:
        return _reply(request, 404, f"queue {key_or_id} not found")
    if queue_id == session.queue_id:
        return _reply(request, 409, "the call came from that queue")
    settings = session.centre.directory.queue(queue_id)
    assert settings is not None
    session.emit(TransferCall(session.call_id, now(), TransferKind.BLIND,
                              f"queue:{settings.key}"))
    log.info("call %s: transferred to queue %s", session.call_id, settings.key)
    came_from = session.queue_id
    session.release_agent()
    session.requeue(queue_id, came_from)
    return _reply(request, 202, f"waiting in queue {settings.key}", state="queued")


def _queue_id(session: CentreSession, key_or_id: str) -> UUID | None:
    """The queue a transfer names (a key names one of the call's tenant); None
    when there is none, or it belongs to another tenant than the call."""
    tenant = session.facts.tenant
    try:
        queue_id = UUID(key_or_id)
    except ValueError:
        try:
            queue_id = Queue.id_for(key_or_id, tenant)
        except InvalidValue:
            return None
    settings = session.centre.directory.queue(queue_id)
    return queue_id if settings is not None and settings.tenant == tenant else None


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
