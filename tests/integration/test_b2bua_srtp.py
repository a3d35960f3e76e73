"""A worker answers a caller's SRTP (SDES) offer with SRTP of its own, and still
bridges it to a plain-RTP callee (the TLS + SRTP path through Kamailio is
tests/e2e/test_edge_tls_srtp.py)."""

from __future__ import annotations

import pytest

from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip


def test_an_srtp_offer_is_answered_with_srtp_and_bridged_to_a_plain_callee(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas", uas_port)  # plain RTP/AVP answer to the worker's offer

    result = sipp.uac("uac_srtp_offer.xml", worker.port, service="1000")

    assert result.ok, result.errors + result.output[-2000:]
    assert sipp.wait_uas(uas) == 0
    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]
