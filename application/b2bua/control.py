"""Call-control requests on a live call-centre call (the API's supervise,
unsupervise, complete and cancel a transfer), decided without pjsua2; the
transfer request itself is ``transfers.py``'s. The adapter is
``adapters/sip/sessions/centre_actions.py``: it performs the actions and sends
the reply.

    supervise   --not talking--> 409
                --the supervisor is on the call from that device--> switch mode, 200
                --... from another device--> 409
                --no free call slot--> 503;  not a SIP URI--> 422
                --else--> CallSupervisor (the adapter calls the device: 202, or 422)
    unsupervise --not on the call--> 404;  else their leg hung up, 200
    complete    --no answered consultation--> 409;  else Transferred (attended),
                  Resumed, the agent released, the consulted party takes their place
    cancel      --no consultation--> 409;  else the consulted party hung up, 200
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from application.b2bua import actions as act
from application.b2bua.consultation import Consultation
from application.b2bua.supervision import Supervision, Watch
from application.b2bua.transfers import ReleaseAgent, Transfers, reply
from application.call_control import AuditLink, ControlReply, ControlRequest
from domain.call import SupervisionMode

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


@dataclass(frozen=True)
class CallSupervisor:
    """Call the supervisor's device; reply 202 once it is being called (422 if not)."""

    supervisor: str
    device: str
    mode: SupervisionMode
    request: ControlRequest


@dataclass(frozen=True)
class TakeConsulted(Generic[L]):
    """The consulted party's leg becomes the call's other party (the agent's place)."""

    leg: L


@dataclass(frozen=True)
class RefreshAudio:
    """Re-route the call's audio (who hears whom changed)."""


ControlAction = act.Action[L] | CallSupervisor | ReleaseAgent | TakeConsulted[L] | RefreshAudio
Decision = tuple[ControlReply | None, list[ControlAction[L]]]


class CallControl(Generic[L]):
    def __init__(self, transfers: Transfers[L], supervision: Supervision[L],
                 consultation: Consultation[L], free_legs: Callable[[], int]) -> None:
        self.transfers = transfers
        self.supervision = supervision
        self.consultation = consultation
        self.free_legs = free_legs
        self.call_id = transfers.call_id

    # Supervisors.

    def supervise(self, request: ControlRequest, cause: AuditLink | None) -> Decision[L]:
        refused = self.transfers.not_talking(request)
        if refused is not None:
            return refused, []
        supervisor, device = request.args["supervisor"], request.args["device"]
        mode = SupervisionMode(request.args["mode"])
        watch = self.supervision.of(supervisor)
        if watch is not None:
            if watch.device != device:
                return reply(request, 409, f"supervisor {supervisor} is on the call from "
                                           f"{watch.device}"), []
            switched = self.supervision.switch(watch, mode, cause)
            return reply(request, 200, f"mode is now {mode}", state=_state(watch),
                         mode=mode), list(switched)
        if self.free_legs() < 1:
            return reply(request, 503, "no free call slot on the worker holding this call"), []
        if not device.startswith(("sip:", "sips:")):
            return self.not_callable(request, device), []
        return None, [CallSupervisor(supervisor, device, mode, request)]

    def supervisor_called(self, call: CallSupervisor, leg: L) -> ControlReply:
        """The adapter is calling the supervisor's device on ``leg``."""
        request = call.request
        self.supervision.calling(call.supervisor, call.device, call.mode, leg,
                                 joined_by=request.audit)
        log.info("call %s: calling supervisor %s at %s (%s)", self.call_id, call.supervisor,
                 call.device, call.mode)
        return reply(request, 202, "calling the supervisor's device", state="calling",
                     mode=call.mode)

    def not_callable(self, request: ControlRequest, device: str) -> ControlReply:
        return reply(request, 422, f"cannot call device {device!r}")

    def unsupervise(self, request: ControlRequest) -> Decision[L]:
        supervisor = request.args["supervisor"]
        watch = self.supervision.of(supervisor)
        if watch is None:
            return reply(request, 404, f"supervisor {supervisor} is not on call "
                                       f"{self.call_id}"), []
        # Its leg's end records SupervisionEnded and re-routes the audio.
        return reply(request, 200, "supervisor leaving"), list(
            self.supervision.leave(watch, request.audit))

    # The consultation of an attended transfer.

    def complete(self, request: ControlRequest) -> Decision[L]:
        consult = self.consultation.current
        if consult is None or not consult.answered:
            return reply(request, 409, "no answered consultation to complete"), []
        consulted, records = self.consultation.complete()
        log.info("call %s: attended transfer to %s completed", self.call_id, consult.label)
        return reply(request, 200, f"connected to {consult.label}"), [
            *records, ReleaseAgent(), TakeConsulted(consulted), RefreshAudio()]

    def cancel(self, request: ControlRequest) -> Decision[L]:
        if self.consultation.current is None:
            return reply(request, 409, "no consultation in progress"), []
        # The consulted leg's end resumes the caller.
        return reply(request, 200, "consultation cancelled"), list(
            self.consultation.cancel(request.audit))


def _state(watch: Watch[L]) -> str:
    return "joined" if watch.joined else "calling"
