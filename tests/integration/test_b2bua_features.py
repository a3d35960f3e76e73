"""Mid-call features through the real worker: hold/resume and blind transfer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.call import Call, Disposition, HangupSide, HoldSide
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip


def test_hold_and_resume_are_recorded_and_propagated_to_the_callee(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas_hold.xml", uas_port)

    result = sipp.uac("uac_hold.xml", worker.port, service="1000")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0, "the callee did not see hold then resume"
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == [
        "Initiated", "Routed", "Ringing", "Answered", "Held", "Resumed", "Ended"]
    assert "hold music to the callee" in worker.log_text()
    held, resumed = history[-3], history[-2]  # the caller's phone held and resumed
    assert isinstance(held, Call.Held)
    assert isinstance(resumed, Call.Resumed)
    assert (held.side, resumed.side) == (HoldSide.CALLER, HoldSide.CALLER)
    call = call_store.service.get_call(history[0].originator_id)
    assert call.hold_count == 1
    assert call.hold_total >= timedelta(milliseconds=500)


def test_blind_transfer_by_the_callee_reconnects_the_caller_to_the_target(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    agent_port, target_port = free_udp_port(), free_udp_port()
    worker = b2bua(route_to(agent_port))
    target_uri = f"sip:2000@127.0.0.1:{target_port}"
    target = sipp.uas("uas", target_port)
    agent = sipp.uas("uas_refer.xml", agent_port, keys={"target": target_uri})

    result = sipp.uac("uac", worker.port, service="1000", extra=["-d", "3000"])

    assert result.ok, result.errors
    assert sipp.wait_uas(agent) == 0, "the transferor did not get 202 and a final NOTIFY"
    assert sipp.wait_uas(target) == 0, "the transfer target was not called, or not hung up"
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == [
        "Initiated", "Routed", "Ringing", "Answered", "Transferred", "Ended"]
    transferred, ended = history[-2], history[-1]
    assert isinstance(transferred, Call.Transferred)
    assert (transferred.kind, transferred.target) == ("blind", target_uri)
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)
    assert worker.log_text().count("audio bridged") >= 2, "the target was not bridged"


def test_media_quality_of_the_callee_stream_is_recorded_before_the_end(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas", uas_port, extra=["-rtp_echo"])  # our RTP comes back to us

    result = sipp.uac("uac", worker.port, service="1000", extra=["-d", "2000"])

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history)[-2:] == ["MediaQualityRecorded", "Ended"]
    quality = history[-2]
    assert isinstance(quality, Call.MediaQualityRecorded)
    assert quality.loss_pct == 0.0
    assert 0.0 <= quality.jitter_ms < 20.0
    assert 4.0 < quality.mos <= 4.5, "a loss-free loopback stream rates near the E-model top"
