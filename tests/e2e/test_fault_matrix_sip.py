"""The fault matrix, SIP overload: a flood at 5x a worker's capacity, a burst of rejections.

One `dialtone b2bua` worker (one bridged call, `--max-calls 1`) on the embedded
deployment (in-process projection runners). The flood keeps five times the
worker's capacity open at once and starts INVITEs at 100/s (the aborting worker
of issue 16 broke at about 80/s); the rejection burst sends 150 INVITEs at
100/s to a callee that refuses every one (486), which allocates and frees a
leg's media per call. Every INVITE must get a final answer (200, 4xx, 503),
the worker must survive, and store and projections must reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dialtone import bootstrap
from dialtone.migrations import apply_migrations
from streams.inprocess import InProcessProjectionRunner
from tests.fixtures.faults import CallLoad, MatrixRecord, leftovers, process_tree, write_record
from tests.fixtures.reconcile import reconcile_until
from tests.fixtures.sip import Sipp, StartWorker, free_udp_port, route_to

pytestmark = pytest.mark.sip

CAPACITY = 1  # bridged calls per worker (--max-calls 1)
FLOOD = {"calls": 150, "rate": 100, "concurrent": 5 * CAPACITY, "hold_ms": 500}
REJECTED = {"calls": 150, "rate": 100, "concurrent": 50, "hold_ms": 0}


@pytest.fixture
def runners(database_url: str) -> Iterator[list[InProcessProjectionRunner]]:
    """The embedded deployment's projection runners, as `dialtone up` runs them."""
    apply_migrations(database_url)
    started = list(bootstrap.inprocess_runners(database_url))
    for runner in started:
        runner.start()
    yield started
    for runner in started:
        runner.stop()


@pytest.mark.parametrize("case", ["invite-flood-5x", "rejected-burst"])
def test_overload(case: str, b2bua: StartWorker, sipp: Sipp, tmp_path: Path, database_url: str,
                  pg_admin_dsn: str, runners: list[InProcessProjectionRunner],
                  tmp_path_factory: pytest.TempPathFactory) -> None:
    del runners  # running for the whole case
    load = FLOOD if case == "invite-flood-5x" else REJECTED
    callee_port = free_udp_port()
    if case == "invite-flood-5x":
        callee = sipp.uas("uas", callee_port, calls=load["calls"])
    else:
        callee = sipp.uas(sipp.render("uas_reject.xml", status="486"), callee_port,
                          calls=load["calls"])
    worker = b2bua(route_to(callee_port),
                   args=["--max-calls", str(CAPACITY)])
    tree = process_tree(worker.process.pid)
    record = MatrixRecord(case)

    started = time.monotonic()
    calls = CallLoad(tmp_path, case, worker.port, calls=load["calls"], rate=load["rate"],
                     concurrent=load["concurrent"], hold_ms=load["hold_ms"])
    outcome = calls.wait()
    alive = worker.alive()
    callee.terminate()
    result = reconcile_until(database_url, pg_admin_dsn, timeout=60)
    record.recovery_s = round(time.monotonic() - started, 1)
    record.events, record.lost, record.doubled = result.events, result.lost, result.doubled
    record.events_added = result.events  # a database of the case's own
    record.projection_diffs = result.projection_diffs
    record.invites_sent, record.invites_answered = outcome.sent, outcome.answered
    record.invites_silent, record.answers = outcome.silent, outcome.answers
    record.calls_left_open = open_calls(database_url)
    worker.stop()
    record.left_behind = leftovers(tree)
    if not alive:
        record.problems.append("the worker died under the load")
    write_record(tmp_path_factory, record)

    assert alive, f"the worker died:\n{worker.log_text()[-3000:]}"
    assert outcome.sent == load["calls"], outcome.stats
    assert outcome.silent == 0, f"INVITEs not answered: {outcome}"
    assert result.ok, result.explain()
    assert record.calls_left_open == 0
    assert record.left_behind == []


def open_calls(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM cdr WHERE ended_at IS NULL").fetchone()
    return int(row[0]) if row else 0
