"""A worker takes INVITEs from its trusted addresses only (the SIP edge's): a real
``dialtone b2bua`` trusting 127.0.0.1, and sipp calling from 127.0.0.2 and from
127.0.0.1 (adapters/sip/pjsua/admission.py, docs/edge.md "Trust and flood control"); an
untrusted INVITE the worker holds in a burst still gets 403, not 503."""

from __future__ import annotations

import pytest

from domain.call import Disposition
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip


def test_an_invite_from_an_untrusted_address_gets_403_and_no_call(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port),
                   args=["--trusted-source", "127.0.0.1", "--no-callcentre"])

    refused = sipp.uac(sipp.expect_status(403), worker.port, service="1000",
                       extra=["-i", "127.0.0.2"])

    assert refused.ok, refused.errors
    assert "INVITE from 127.0.0.2:" in worker.log_text()
    assert "refused with 403: not a trusted source" in worker.log_text()
    # The trusted address still gets its call, and it is the only call stored:
    # the refused INVITE was never routed nor recorded.
    sipp.assert_a_call_works(worker.port, uas_port)
    histories = call_store.wait_ended(1)
    assert len(histories) == 1
    (history,) = histories.values()
    assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]
    assert history[-1].disposition == Disposition.ANSWERED  # type: ignore[attr-defined]


# The worker's key budget (adapters/sip/pjsua/admission.py) lets 25 INVITEs close
# within half a second with its 4 call slots; each refused INVITE closes its RTP
# transport, a 403 included. So a burst of 28 from one source, sent in ~70 ms,
# has its last ones held (their slots too: 3 of 4, leaving room, so none is
# pjsua's own stateless 486) and answered once the keys are free again.
BURST_CALLS = 28
BURST_RATE = 400


def test_untrusted_invites_held_in_a_burst_get_403_not_503(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port),
                   args=["--trusted-source", "127.0.0.1", "--no-callcentre"])

    refused = sipp.uac(sipp.expect_status(403), worker.port, service="1000",
                       calls=BURST_CALLS, rate=BURST_RATE, extra=["-i", "127.0.0.2"])

    # Before the fix the held ones got 503 + Retry-After: "come back later".
    assert refused.ok, f"{refused.errors[-3000:]}\n{worker.log_text()[-2000:]}"
    text = worker.log_text()
    assert "refused with 403: not a trusted source (held in a burst)" in text, text[-3000:]
    assert "refused with 503" not in text, text[-3000:]
    # Nothing routed nor stored for any of them: the one call stored is the
    # trusted address's, after the burst.
    sipp.assert_a_call_works(worker.port, uas_port)
    histories = call_store.wait_ended(1)
    assert len(histories) == 1, histories
