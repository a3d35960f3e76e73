"""Kamailio's dispatcher in front of two real workers (infra/kamailio/kamailio.cfg):
calls spread over the workers by load, and every call lands in the one event store."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.call import Disposition
from tests.fixtures.kamailio import StartProxy
from tests.fixtures.sip import (
    RETRY_AFTER_CHECK,
    CallStore,
    Sipp,
    StartWorker,
    free_udp_port,
    kinds,
    route_to,
    wait_until,
)

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
ROUTED_UAC = ROOT / "bench" / "sipp" / "uac_bench.xml"  # follows Record-Route


def test_calls_are_spread_over_workers_and_stored_once(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, kamailio: StartProxy
) -> None:
    uas_port = free_udp_port()
    route = route_to(uas_port)
    workers = [b2bua(route), b2bua(route)]
    proxy_port = kamailio(workers).port
    uas = sipp.uas("uas", uas_port, calls=2)

    result = sipp.uac(ROUTED_UAC, proxy_port, service="1000", calls=2, rate=10,
                      extra=["-d", "2000"])

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    for worker in workers:  # two calls at once, one worker each (a worker holds one)
        assert worker.log_text().count("audio bridged") == 1, worker.log_text()
    histories = call_store.wait_ended(2)
    assert len(histories) == 2
    for history in histories.values():
        assert kinds(history) == ["Initiated", "Routed", "Ringing", "Answered", "Ended"]
        assert history[-1].disposition == Disposition.ANSWERED  # type: ignore[attr-defined]


def test_when_every_worker_is_busy_the_proxy_answers_503_with_retry_after(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, kamailio: StartProxy
) -> None:
    """A worker carries two bridged calls (maxload=2: its four legs). With both up,
    the proxy answers the next INVITE 503 + Retry-After itself; a proxy that
    believes the worker has room (maxload=3) gets pjsua's stateless 486 (no leg
    left) and answers 503 + Retry-After too, not busy."""
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port), args=["--max-calls", "2"])
    proxy_port = kamailio([worker]).port
    overcommitted_port = kamailio([worker], maxload=3).port
    uas = sipp.uas("uas", uas_port, calls=2)
    busy = sipp.uac_background(ROUTED_UAC, proxy_port, service="1000", calls=2,
                               extra=["-d", "4000"])
    wait_until(lambda: worker.log_text().count("audio bridged") == 2, "both calls answered")

    refused = sipp.uac(sipp.expect_status(503, header_check=RETRY_AFTER_CHECK), proxy_port,
                       service="1000")
    beyond_legs = sipp.uac(sipp.expect_status(503, header_check=RETRY_AFTER_CHECK),
                           overcommitted_port, service="1000")

    assert refused.ok, refused.errors
    assert beyond_legs.ok, beyond_legs.errors
    # The worker logs its refusal after sending the 486 Kamailio turned into the 503.
    wait_until(lambda: "refused by pjsua itself with 486" in worker.log_text(),
               "the worker's log of pjsua's own 486")
    assert busy.wait(30) == 0
    assert sipp.wait_uas(uas) == 0
    assert len(call_store.wait_ended(2)) == 2
