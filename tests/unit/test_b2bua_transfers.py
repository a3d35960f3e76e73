"""Transfer requests on a call-centre call (application.b2bua.transfers) with
fake legs: blind to a queue, a number or a URI, attended, a waiting caller
moved by its queue, and every refusal. No SIP stack, no database."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

import pytest

from application.b2bua import actions as act
from application.b2bua.centre_commands import CentreDone, TransferWaiting
from application.b2bua.consultation import Consultation
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Answered, Audio, MediaChanged, ReferReceived, Ringing
from application.b2bua.transfers import (
    Decision,
    DialAfterTransfer,
    DialConsultation,
    MoveWaiting,
    ReleaseAgent,
    Requeue,
    Transfers,
)
from application.call_control import Action, AuditLink, ControlRequest
from domain.addressing import Target
from domain.call import TransferKind
from domain.call_commands import TransferCall
from domain.queue import Queue
from tests.unit.b2bua_fakes import Clock, FakeAdapter, FakeLeg, make_call

SALES, SUPPORT = Queue.id_for("sales"), Queue.id_for("support")
FOREIGN = Queue.id_for("sales", "other-tenant")


@dataclass(frozen=True)
class Settings:
    key: str
    tenant: str = "default"


QUEUES = {SALES: Settings("sales"), SUPPORT: Settings("support"),
          FOREIGN: Settings("sales", "other-tenant")}


def transfers(stage: Stage = Stage.TALKING) -> tuple[Transfers[FakeLeg], FakeAdapter]:
    """A call the agent talks on (answered, in from the sales queue)."""
    adapter, _ = make_call()
    callee = adapter.placed[0]
    adapter.fact(Ringing(callee, 180))
    adapter.fact(Answered(callee))
    call = adapter.call
    front: Front[FakeLeg] = Front(call.call_id, call.a, lambda _: None, lambda _: None, str)
    front.stage, front.queue_id = stage, SALES
    numbers = {"2000": "sip:2000@127.0.0.1"}
    flow = Transfers(call, front, Consultation(call.call_id), QUEUES.get, numbers.get, Clock())
    return flow, adapter


def request(kind: str, target_kind: str, value: str) -> ControlRequest:
    return ControlRequest(str(uuid4()), uuid4(), Action.TRANSFER,
                          {"kind": kind, "target_kind": target_kind, "target_value": value},
                          origin="req-1")


def status(decision: Decision) -> int:
    answer = decision[0]
    assert answer is not None
    return answer.status


def test_a_blind_transfer_to_a_queue_releases_the_agent_and_requeues_the_caller() -> None:
    flow, _ = transfers()
    answer, actions = flow.transfer(request("blind", "queue", "support"))
    assert answer is not None
    assert (answer.status, answer.data) == (202, {"state": "queued"})
    [emit, release, requeue] = actions
    assert isinstance(emit, act.Emit)
    assert isinstance(emit.command, TransferCall)
    assert (emit.command.kind, emit.command.target) == (TransferKind.BLIND, "queue:support")
    assert (release, requeue) == (ReleaseAgent(), Requeue(SUPPORT, SALES))


def test_a_queue_named_by_id_works_and_one_of_another_tenant_is_not_found() -> None:
    flow, _ = transfers()
    assert status(flow.transfer(request("blind", "queue", str(SUPPORT)))) == 202
    flow, _ = transfers()
    assert status(flow.transfer(request("blind", "queue", str(FOREIGN)))) == 404
    assert status(flow.transfer(request("blind", "queue", "nowhere"))) == 404
    assert status(flow.transfer(request("blind", "queue", "sales"))) == 409  # came from it


def test_a_blind_transfer_to_a_number_or_uri_dials_it() -> None:
    flow, _ = transfers()
    answer, actions = flow.transfer(request("blind", "number", "2000"))
    assert answer is not None
    assert answer.detail == "calling number:2000"
    assert actions[1:] == [ReleaseAgent(), DialAfterTransfer("sip:2000@127.0.0.1")]
    flow, _ = transfers()
    assert flow.transfer(request("blind", "uri", "sip:carol@h"))[1][-1] == DialAfterTransfer(
        "sip:carol@h")
    assert status(flow.transfer(request("blind", "number", "9999"))) == 404
    assert status(flow.transfer(request("blind", "uri", "carol"))) == 404
    with pytest.raises(ValueError, match="target_kind"):
        flow.transfer(request("blind", "menu", "x"))


def test_an_attended_transfer_consults_and_never_to_a_queue() -> None:
    flow, _ = transfers()
    req = request("attended", "number", "2000")
    assert flow.transfer(req) == (
        None, [DialConsultation("sip:2000@127.0.0.1", "number:2000", req)])
    assert status(flow.transfer(request("attended", "queue", "support"))) == 422


def test_a_call_being_transferred_on_hold_or_not_talking_is_a_conflict() -> None:
    flow, adapter = transfers()
    flow.consultation.start("number:2000", FakeLeg("consulted"))
    assert status(flow.transfer(request("blind", "number", "2000"))) == 409
    flow, adapter = transfers()
    adapter.fact(ReferReceived(adapter.call.b, "sip:carol@h"))  # type: ignore[arg-type]
    assert status(flow.transfer(request("blind", "number", "2000"))) == 409
    flow, adapter = transfers()
    adapter.fact(MediaChanged(adapter.call.a, Audio.REMOTE_HOLD))
    answer, _ = flow.transfer(request("blind", "number", "2000"))
    assert answer is not None
    assert answer.detail.endswith("is on hold")
    flow, adapter = transfers(Stage.DIALLING)
    adapter.call.b = None
    answer, _ = flow.transfer(request("blind", "number", "2000"))
    assert answer is not None
    assert (answer.status, answer.detail.endswith("(it is dialling)")) == (409, True)


def test_a_waiting_caller_is_moved_by_its_queue_for_the_request() -> None:
    flow, _ = transfers(Stage.QUEUE)
    req = request("blind", "queue", "support")
    answer, [move] = flow.transfer(req)
    assert answer is not None
    assert (answer.status, answer.data) == (202, {"state": "queued"})
    assert isinstance(move, MoveWaiting)
    assert (move.command.queue_id, move.command.target) == (SALES, Target.queue(SUPPORT))
    assert flow.moved_by == AuditLink(req.call_id, req.request_id, "req-1")
    flow.move_done(CentreDone(move.command, ok=True))
    assert flow.moved_by is not None  # until the queue's event says it moved
    flow.move_done(CentreDone(move.command, ok=False, error="gone"))
    assert flow.moved_by is None


def test_a_waiting_caller_moves_to_a_number_but_not_to_a_uri() -> None:
    flow, _ = transfers(Stage.QUEUE)
    answer, [move] = flow.transfer(request("blind", "number", "2000"))
    assert answer is not None
    assert answer.data == {"state": "calling"}
    assert isinstance(move, MoveWaiting)
    assert isinstance(move.command, TransferWaiting)
    assert move.command.target == Target.number("2000")
    assert status(flow.transfer(request("blind", "uri", "sip:carol@h"))) == 409
