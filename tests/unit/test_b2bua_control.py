"""Call-control requests on a call-centre call (application.b2bua.control) with
fake legs: supervisors called, switched, taken off; an attended transfer's
consultation completed or cancelled; every refusal. No SIP stack, no database."""

from __future__ import annotations

from uuid import uuid4

from application.b2bua import actions as act
from application.b2bua.consultation import Consultation
from application.b2bua.control import (
    CallControl,
    CallSupervisor,
    Decision,
    RefreshAudio,
    TakeConsulted,
)
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Answered, Ringing
from application.b2bua.supervision import Supervision
from application.b2bua.transfers import ReleaseAgent, Transfers
from application.call_control import Action, ControlRequest
from domain.call import SupervisionMode
from domain.call_commands import ResumeCall, StartSupervision, TransferCall
from tests.unit.b2bua_fakes import Clock, FakeLeg, make_call


def control(*, talking: bool = True, free_legs: int = 2) -> CallControl[FakeLeg]:
    adapter, _ = make_call()
    if talking:
        callee = adapter.placed[0]
        adapter.fact(Ringing(callee, 180))
        adapter.fact(Answered(callee))
    call, clock = adapter.call, Clock()
    front: Front[FakeLeg] = Front(call.call_id, call.a, lambda _: None, lambda _: None, str)
    front.stage = Stage.TALKING if talking else Stage.QUEUE
    consultation: Consultation[FakeLeg] = Consultation(call.call_id, clock)
    transfers = Transfers(call, front, consultation, lambda _: None, lambda _: None, clock)
    return CallControl(transfers, Supervision(call.call_id, clock), consultation,
                       lambda: free_legs)


def status(decision: Decision[FakeLeg]) -> int:
    assert decision[0] is not None
    return decision[0].status


def request(action: Action, **args: str) -> ControlRequest:
    return ControlRequest(str(uuid4()), uuid4(), action, args, origin="req-1")


def supervise(device: str = "sip:sue@h", mode: str = "monitor") -> ControlRequest:
    return request(Action.SUPERVISE, supervisor="sue", device=device, mode=mode)


def test_a_supervisor_is_called_only_on_a_call_someone_talks_on() -> None:
    assert status(control(talking=False).supervise(supervise(), None)) == 409
    flow = control()
    req = supervise()
    assert flow.supervise(req, None) == (None, [
        CallSupervisor("sue", "sip:sue@h", SupervisionMode.MONITOR, req)])


def test_no_free_slot_is_503_and_a_device_that_is_no_sip_uri_422() -> None:
    assert status(control(free_legs=0).supervise(supervise(), None)) == 503
    assert status(control().supervise(supervise("tel:123"), None)) == 422


def test_a_called_supervisor_switches_mode_from_the_same_device_only() -> None:
    flow = control()
    req = supervise()
    [call] = flow.supervise(req, None)[1]
    assert isinstance(call, CallSupervisor)
    called = flow.supervisor_called(call, FakeLeg("sue"))
    assert (called.status, called.data["state"]) == (202, "calling")
    answer, actions = flow.supervise(supervise(mode="whisper"), None)
    assert answer is not None
    assert (answer.status, answer.data["state"], actions) == (200, "calling", [])  # not joined
    watch = flow.supervision.of("sue")
    assert watch is not None
    flow.supervision.device_answered(watch, None)
    _, actions = flow.supervise(supervise(mode="barge"), None)
    assert isinstance(actions[0], act.Emit)
    assert isinstance(actions[0].command, StartSupervision)
    assert status(flow.supervise(supervise("sip:other@h"), None)) == 409


def test_taking_a_supervisor_off_hangs_their_leg_up() -> None:
    flow = control()
    assert status(flow.unsupervise(request(Action.UNSUPERVISE, supervisor="sue"))) == 404
    [call] = flow.supervise(supervise(), None)[1]
    assert isinstance(call, CallSupervisor)
    leg = FakeLeg("sue")
    flow.supervisor_called(call, leg)
    answer, actions = flow.unsupervise(request(Action.UNSUPERVISE, supervisor="sue"))
    assert answer is not None
    assert (answer.status, actions) == (200, [act.HangUp(leg)])


def test_completing_an_answered_consultation_puts_the_consulted_party_in_the_agents_place(
) -> None:
    flow = control()
    assert status(flow.complete(request(Action.COMPLETE_TRANSFER))) == 409
    consulted = FakeLeg("consulted")
    flow.consultation.start("number:2000", consulted)
    assert status(flow.complete(request(Action.COMPLETE_TRANSFER))) == 409
    flow.consultation.consulted_answered()
    answer, actions = flow.complete(request(Action.COMPLETE_TRANSFER))
    assert answer is not None
    assert answer.status == 200
    commands = [a.command for a in actions if isinstance(a, act.Emit)]
    assert [type(c) for c in commands] == [TransferCall, ResumeCall]
    assert actions[-3:] == [ReleaseAgent(), TakeConsulted(consulted), RefreshAudio()]


def test_cancelling_hangs_the_consulted_party_up() -> None:
    flow = control()
    assert status(flow.cancel(request(Action.CANCEL_TRANSFER))) == 409
    consulted = FakeLeg("consulted")
    flow.consultation.start("number:2000", consulted)
    answer, actions = flow.cancel(request(Action.CANCEL_TRANSFER))
    assert answer is not None
    assert (answer.status, actions) == (200, [act.HangUp(consulted)])
