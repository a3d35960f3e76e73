"""The mid-call features a handset starts on the side the other tests leave
out (issue 14 section 6), through the real worker: a blind transfer by REFER
from the caller's phone, and hold and resume started by the callee's phone.

test_b2bua_features.py covers the mirror cases (hold by the caller, REFER by
the callee).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.call import Call, Disposition, HangupSide, HoldSide
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip


def test_blind_transfer_by_the_caller_connects_the_callee_to_the_target(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    callee_port, target_port = free_udp_port(), free_udp_port()
    worker = b2bua(route_to(callee_port))
    target_uri = f"sip:2000@127.0.0.1:{target_port}"
    callee = sipp.uas("uas_wait_bye.xml", callee_port)  # stays until hung up
    target = sipp.uas("uas_hangup.xml", target_port)  # answers, then hangs up

    result = sipp.uac("uac_refer.xml", worker.port, service="1000", keys={"target": target_uri})

    assert result.ok, f"the caller did not get 202 and a final NOTIFY: {result.errors}"
    assert sipp.wait_uas(target) == 0, "the transfer target was not called"
    assert sipp.wait_uas(callee) == 0, "the callee was not hung up after the target left"
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == [
        "Initiated", "Routed", "Ringing", "Answered", "Transferred", "Ended"]
    transferred, ended = history[-2], history[-1]
    assert isinstance(transferred, Call.Transferred)
    assert (transferred.kind, transferred.target) == ("blind", target_uri)
    assert isinstance(ended, Call.Ended)
    # The target took the caller's place: its BYE ends the call on the caller's side.
    assert (ended.disposition, ended.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)
    log = worker.log_text()
    assert "blind transfer by the caller" in log
    assert log.count("audio bridged") >= 2, "the callee was not bridged to the target"


def test_hold_by_the_callee_holds_the_caller_and_resume_resumes_it(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    callee_port = free_udp_port()
    worker = b2bua(route_to(callee_port))
    callee = sipp.uas("uas_holds.xml", callee_port)

    result = sipp.uac("uac_held.xml", worker.port, service="1000")

    assert result.ok, f"the caller was not held then resumed: {result.errors}"
    assert sipp.wait_uas(callee) == 0
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == [
        "Initiated", "Routed", "Ringing", "Answered", "Held", "Resumed", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLEE)
    # The callee's phone held and resumed, and the events say so.
    held, resumed = history[-3], history[-2]
    assert isinstance(held, Call.Held)
    assert isinstance(resumed, Call.Resumed)
    assert (held.side, resumed.side) == (HoldSide.CALLEE, HoldSide.CALLEE)
    assert "hold music to the caller" in worker.log_text()
    call = call_store.service.get_call(history[0].originator_id)
    assert call.hold_count == 1
    assert call.hold_total >= timedelta(milliseconds=500)
