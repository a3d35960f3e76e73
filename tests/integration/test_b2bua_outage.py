"""The event store going away mid-call: calls stay up, no command is lost or doubled.

A short outage is absorbed inside eventsourcing's own retries (the storage
thread just waits); a long one exhausts them, so the storage thread's backoff,
buffering and exactly-once re-application are what keep the history right.
"""

from __future__ import annotations

import time

import pytest

from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.sip import (
    CallStore,
    Sipp,
    StartWorker,
    free_udp_port,
    kinds,
    route_to,
    wait_until,
)

pytestmark = pytest.mark.sip

EXPECTED = ["Initiated", "Routed", "Ringing", "Answered", "Ended"]


@pytest.mark.parametrize(
    ("how", "outage", "calls"),
    [("stop", 5, 8), ("kill", 30, 14)],
)
def test_calls_survive_a_database_outage_and_are_stored_exactly_once(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, embedded: EmbeddedPostgres,
    how: str, outage: float, calls: int,
) -> None:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    uas = sipp.uas("uas", uas_port, calls=calls)
    # One call at a time (a worker holds one), back to back, across the outage.
    callers = sipp.uac_background("uac", worker.port, service="1000", calls=calls, rate=10,
                                  extra=["-d", "2500", "-l", "1"], timeout=80)
    wait_until(lambda: any("Answered" in kinds(h) for h in call_store.histories().values()),
               "a first call answered and stored")

    embedded.kill() if how == "kill" else embedded.stop()
    time.sleep(outage)  # calls start, answer and end while the store is down
    embedded.start()

    assert callers.wait(90) == 0, "calls were disturbed by the outage"
    assert sipp.wait_uas(uas) == 0
    histories = call_store.wait_ended(calls, timeout=60)
    assert len(histories) == calls
    assert all(kinds(h) == EXPECTED for h in histories.values()), histories
    if outage > 25:  # beyond eventsourcing's own retries: ours took over
        log = worker.log_text()
        assert "event store unavailable" in log
        assert "event store reachable again" in log
