"""A worker stopped (SIGTERM) while the event store is down: it exits within the
pool's stop timeout instead of waiting to be SIGKILLed, and what it could not
store is not lost: the worker restarted on the same address stores it once the
store is back (adapters/sip/store/unstored.py)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from dialtone.commands.b2bua import spawn_worker
from dialtone.services.forkpool import PoolPolicy
from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.sip import (
    CallStore,
    Sipp,
    StartWorker,
    Worker,
    free_udp_port,
    kinds,
    route_to,
    wait_until,
)

pytestmark = pytest.mark.sip

EXPECTED = ["Initiated", "Routed", "Ringing", "Answered", "Ended"]


def test_a_worker_stopped_in_an_outage_exits_in_time_and_its_restart_stores_the_rest(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, embedded: EmbeddedPostgres,
    database_url: str, tmp_path: Path,
) -> None:
    uas_port = free_udp_port()
    route = route_to(uas_port)
    worker = b2bua(route)
    uas = sipp.uas("uas", uas_port)
    embedded.stop()
    try:
        # A whole call while the store is down: nothing of it is stored.
        caller = sipp.uac_background("uac", worker.port, service="1000",
                                     extra=["-d", "500"], timeout=60)
        assert caller.wait(60) == 0
        assert sipp.wait_uas(uas) == 0
        # Stopped as the pool stops it: SIGTERM, SIGKILL after its stop timeout.
        assert worker.stop(timeout=PoolPolicy().stop_timeout_s) == 0, worker.log_text()
        assert "kept in" in worker.log_text()
    finally:
        embedded.start()

    env = {**os.environ, "DATABASE_URL": database_url, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(tmp_path / "data")}  # the b2bua fixture's
    log = tmp_path / "restarted.log"
    restarted = Worker(worker.port, spawn_worker(worker.port, routes=[route], env=env,
                                                 log_file=log), log)
    try:
        wait_until(lambda: "listening on udp" in restarted.log_text(), "the restart listening",
                   timeout=60)
        histories = call_store.wait_ended(1, timeout=30)
        assert [kinds(h) for h in histories.values()] == [EXPECTED], histories
        assert re.search(r"stored \d+ commands a previous stop kept", restarted.log_text())
        assert "was lost with" not in restarted.log_text()  # ended by its caller, as it was
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            restarted.stop()
