"""sipp caller -> real ``dialtone b2bua`` -> sipp callee, events read back from PostgreSQL."""

from __future__ import annotations

import pytest

from domain.call import Call, CallStatus, Disposition, HangupSide
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip


def only_call(store: CallStore) -> list[Call.Event]:
    histories = store.wait_ended(1)
    assert len(histories) == 1, histories
    return next(iter(histories.values()))


def test_answered_call_is_bridged_and_recorded(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas", uas_port)

    result = sipp.uac("uac", worker.port, service="1000", extra=["-d", "300"])

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]
    initiated, routed, ended = history[0], history[1], history[-1]
    assert isinstance(initiated, Call.Initiated)
    # Neither number is provisioned: phone to phone through the dialplan (issue 11 §6).
    assert (initiated.caller, initiated.callee, initiated.direction, initiated.trunk) == (
        "sipp", "1000", "internal", None)
    assert isinstance(routed, Call.Routed)
    assert routed.target == f"sip:1000@127.0.0.1:{uas_port}"
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side, ended.sip_status) == (
        Disposition.ANSWERED, HangupSide.CALLER, 200)
    assert "audio bridged" in worker.log_text()
    call = call_store.service.get_call(initiated.originator_id)
    assert call.status is CallStatus.ENDED
    assert call.answered_at is not None
    assert call.ended_at is not None
    assert call.answered_at <= call.ended_at


def test_callee_hanging_up_ends_the_call_on_the_callee_side(b2bua: StartWorker, sipp: Sipp,
                                                             call_store: CallStore) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas_hangup.xml", uas_port)

    result = sipp.uac("uac_wait_bye.xml", worker.port, service="1001")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLEE)


@pytest.mark.parametrize(
    ("callee_status", "caller_status", "disposition"),
    [
        (486, 486, Disposition.BUSY),
        (600, 600, Disposition.BUSY),
        (404, 404, Disposition.FAILED),
        (500, 500, Disposition.FAILED),
        (503, 502, Disposition.FAILED),
        (480, 480, Disposition.NO_ANSWER),
    ],
)
def test_callee_refusal_is_relayed_and_recorded(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore,
    callee_status: int, caller_status: int, disposition: Disposition,
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas(sipp.render("uas_reject.xml", status=str(callee_status)), uas_port)

    result = sipp.uac(sipp.expect_status(caller_status), worker.port, service="1002")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Routed", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side, ended.sip_status) == (
        disposition, HangupSide.CALLEE, caller_status)


def test_unanswered_callee_is_cancelled_after_the_timeout(b2bua: StartWorker, sipp: Sipp,
                                                          call_store: CallStore) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port), args=["--no-answer-timeout", "1.5"])
    uas = sipp.uas("uas_ring_cancelled.xml", uas_port)

    result = sipp.uac(sipp.expect_status(480), worker.port, service="1003")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0, "the callee leg was not cancelled"
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side, ended.hangup_cause, ended.sip_status) == (
        Disposition.NO_ANSWER, HangupSide.SYSTEM, "no_answer_timeout", 480)


def test_caller_cancel_cancels_the_callee_leg(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas_ring_cancelled.xml", uas_port)

    result = sipp.uac("uac_cancel.xml", worker.port, service="1004")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0, "the callee leg was not cancelled"
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side, ended.sip_status) == (
        Disposition.CANCELLED, HangupSide.CALLER, 487)


def test_unknown_number_gets_404_and_a_failed_call(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    worker = b2bua(route_to(free_udp_port()))

    result = sipp.uac(sipp.expect_status(404), worker.port, service="999")

    assert result.ok, result.errors
    history = only_call(call_store)
    assert kinds(history) == ["Initiated", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_cause, ended.hangup_side, ended.sip_status) == (
        Disposition.FAILED, "no_route", HangupSide.SYSTEM, 404)
