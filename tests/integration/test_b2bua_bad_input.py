"""Bad input never crashes or hangs the worker, and calls around it are untouched."""

from __future__ import annotations

import re

import pytest

from domain.call import Call, Disposition
from tests.fixtures.sip import (
    RETRY_AFTER_CHECK,
    CallStore,
    Sipp,
    StartWorker,
    free_udp_port,
    kinds,
    route_to,
    udp_exchange,
    wait_until,
)

pytestmark = pytest.mark.sip



def invite(call_id: str, *, headers: str = "", body: str = "") -> bytes:
    lines = [
        "INVITE sip:1000@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-{call_id}",  # rport: reply to us
        "From: <sip:raw@127.0.0.1>;tag=raw",
        "To: <sip:1000@127.0.0.1>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        "Contact: <sip:raw@127.0.0.1:9>",
        "Max-Forwards: 70",
    ]
    if headers:
        lines.append(headers)
    content_type = "Content-Type: application/sdp\r\n" if body else ""
    head = "\r\n".join(lines)
    return f"{head}\r\n{content_type}Content-Length: {len(body)}\r\n\r\n{body}".encode()


SDP_FOREIGN_CODEC = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                     "m=audio 7000 RTP/AVP 98\r\na=rtpmap:98 NOPE/8000\r\n")


def test_malformed_datagrams_are_dropped_and_the_next_call_works(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    garbage = [
        b"\x00\xff\xfe not sip at all\r\n\r\n",
        b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\n\r\n",  # no mandatory headers
        invite("bad-cseq").replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"),
        b"INVITE " + b"A" * 3000 + b" SIP/2.0\r\n\r\n",
    ]

    for payload in garbage:
        assert udp_exchange(worker.port, payload, wait=0.3) == []

    sipp.assert_a_call_works(worker.port, uas_port)
    assert worker.alive()
    assert len(call_store.wait_ended(1)) == 1
    assert "Dropping" in worker.log_text()


def test_unparsable_sdp_gets_400(b2bua: StartWorker, sipp: Sipp) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))

    replies = udp_exchange(worker.port, invite("bad-sdp", body="v=0\r\nzzz\r\n"))

    assert replies
    assert replies[0].startswith(b"SIP/2.0 400")
    sipp.assert_a_call_works(worker.port, uas_port)
    assert "Bad SDP" in worker.log_text()


def test_no_common_codec_gets_488(b2bua: StartWorker, sipp: Sipp) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))

    result = sipp.uac(sipp.expect_status(488, formats="98", attributes="a=rtpmap:98 NOPE/8000"),
                      worker.port, service="1000")

    assert result.ok, result.errors
    sipp.assert_a_call_works(worker.port, uas_port)
    assert "Not Acceptable Here" in worker.log_text()


def test_invite_without_sdp_gets_an_offer_in_the_200(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas", uas_port)

    result = sipp.uac("uac_late_offer.xml", worker.port, service="1000")

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]


def test_invites_beyond_capacity_get_503_with_retry_after(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port), args=["--max-calls", "1"])
    uas = sipp.uas("uas", uas_port, calls=1)
    busy = sipp.uac_background("uac", worker.port, service="1000", calls=1,
                               extra=["-d", "4000"])
    wait_until(lambda: len(_answered(call_store)) >= 1, "the first call answered")

    refused = sipp.uac(sipp.expect_status(503, header_check=RETRY_AFTER_CHECK), worker.port,
                       service="1000", calls=3, rate=20)

    assert refused.ok, refused.errors
    assert busy.wait(30) == 0, "the calls in progress were disturbed"
    assert sipp.wait_uas(uas) == 0
    histories = call_store.wait_ended(1)
    assert len(histories) == 1, "refused INVITEs must not create calls"
    assert all(isinstance(h[-1], Call.Ended) and h[-1].disposition == Disposition.ANSWERED
               for h in histories.values())
    assert len(re.findall(r"refused with 503", worker.log_text())) == 3


def test_a_flood_is_answered_or_refused_never_dropped(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port), args=["--max-calls", "1"])
    uas = sipp.uas("uas", uas_port, calls=40)

    result = sipp.uac("uac_flood.xml", worker.port, service="1000", calls=40, rate=40,
                      extra=["-d", "500", "-l", "40"], timeout=60)

    assert result.ok, result.errors
    refused = len(re.findall(r"refused with 503", worker.log_text()))
    # pjsua's own stateless 486 once every call slot is held (see adapters/sip/pjsua/admission.py)
    busy = len(re.findall(r"too many calls", worker.log_text()))
    answered = 40 - refused - busy
    assert refused > 0, "the flood never reached capacity"
    histories = call_store.wait_ended(answered)
    assert len(histories) == answered
    assert worker.alive()
    uas.terminate()


def _answered(store: CallStore) -> list[Call.Answered]:
    return [e for h in store.histories().values() for e in h if isinstance(e, Call.Answered)]
