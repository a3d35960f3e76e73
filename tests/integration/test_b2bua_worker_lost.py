"""A B2BUA worker killed with SIGKILL during an answered call: the call does not
stay "answered" for ever. Its claims in ``sip_worker_calls`` name the worker,
and its calls are ended with cause ``worker_lost`` by the worker restarted on
the same address, or by a supervisor calling ``end_lost_worker_calls``."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from dialtone.commands.b2bua import end_lost_worker_calls, spawn_worker
from domain.call import Call, Disposition, HangupSide
from tests.fixtures.sip import (
    CallStore,
    Sipp,
    StartWorker,
    Worker,
    free_udp_port,
    route_to,
    wait_until,
)

pytestmark = pytest.mark.sip


def answered_call(store: CallStore) -> UUID:
    """Waits for the one call to be answered (stored), and returns its id."""
    wait_until(lambda: any(isinstance(e, Call.Answered) for h in store.histories().values()
                           for e in h), "the call answered and stored")
    (call_id,) = store.histories()
    return call_id


def start_a_call_then_kill(b2bua: StartWorker, sipp: Sipp, store: CallStore
                           ) -> tuple[Worker, UUID]:
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    sipp.uas("uas", uas_port)
    sipp.uac_background("uac", worker.port, service="1000", extra=["-d", "60000"], timeout=90)
    call_id = answered_call(store)
    worker.process.kill()  # SIGKILL: no BYE, no Ended, nothing flushed
    worker.process.wait(10)
    return worker, call_id


def assert_ended_as_lost(store: CallStore, call_id: UUID) -> None:
    histories = store.wait_ended(1)
    ended = histories[call_id][-1]
    assert isinstance(ended, Call.Ended)
    # Answered once, it stays answered (the domain's rule); the cause says why it ended.
    assert (ended.disposition, ended.hangup_cause, ended.hangup_side) == (
        Disposition.ANSWERED, "worker_lost", HangupSide.SYSTEM)


def test_a_restarted_worker_ends_the_calls_its_killed_predecessor_left(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, database_url: str, tmp_path: Path
) -> None:
    worker, call_id = start_a_call_then_kill(b2bua, sipp, call_store)
    assert not isinstance(call_store.histories()[call_id][-1], Call.Ended)

    env = {**os.environ, "DATABASE_URL": database_url, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "restarted.log"
    restarted = Worker(worker.port, spawn_worker(worker.port, routes=[route_to(9)], env=env,
                                                 log_file=log), log)
    try:
        wait_until(lambda: "listening on udp" in restarted.log_text(), "the restart listening")
        assert_ended_as_lost(call_store, call_id)
        assert "was lost with 1 calls open" in restarted.log_text()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            restarted.stop()


def test_a_supervisor_ends_the_calls_of_a_worker_it_saw_die(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, database_url: str
) -> None:
    worker, call_id = start_a_call_then_kill(b2bua, sipp, call_store)

    ended = end_lost_worker_calls(database_url, "127.0.0.1", worker.port)

    assert ended == [call_id]
    assert_ended_as_lost(call_store, call_id)
    assert end_lost_worker_calls(database_url, "127.0.0.1", worker.port) == []  # once only
