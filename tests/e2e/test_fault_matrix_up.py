"""The fault matrix, embedded deployment: `dialtone up` and the B2BUA worker it runs.

`dialtone up` on its own data directory (embedded PostgreSQL, in-process
projections, routing process, API, one B2BUA worker). Load: real SIP calls
through the worker (numbers with no route: each INVITE is answered 404 and
recorded as a failed call) and agent commands through the API.

- SIGTERM of `dialtone up` (what containers and systemd send): it stops within
  30 s and leaves nothing running (workers, PostgreSQL); started again on the
  same directory, its projections reconcile with the store.
- SIGKILL of its B2BUA worker: `up` starts another on the same port; INVITEs
  sent meanwhile are answered (their retransmissions reach the new worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.faults import (
    ApiLoad,
    CallLoad,
    MatrixRecord,
    api_headers,
    api_healthy,
    leftovers,
    process_tree,
    provision_agents,
    write_record,
)
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.reconcile import reconcile_until, store_size
from tests.fixtures.sip import free_udp_port

pytestmark = pytest.mark.sip

AGENTS = ["up-ann", "up-bob"]
CALLS, RATE = 16, 4


@dataclass
class Up:
    workdir: Path
    pg_port: int
    http_port: int
    sip_port: int
    process: DialtoneProcess | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the API credential

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def postgres(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.workdir / "data" / "postgres", self.pg_port)

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/dialtone"

    @property
    def pid(self) -> int:
        assert self.process is not None
        assert self.process.proc is not None
        return self.process.proc.pid

    def start(self) -> None:
        env = {**os.environ, "DIALTONE_DATA_DIR": str(self.workdir / "data"),
               "DIALTONE_EMBEDDED_PG_PORT": str(self.pg_port),
               "DIALTONE_HTTP_PORT": str(self.http_port), "DIALTONE_LOG_LEVEL": "INFO"}
        env.pop("DATABASE_URL", None)
        env.pop("DIALTONE_KAFKA_BOOTSTRAP", None)
        self.process = DialtoneProcess(["up", "--sip-port", str(self.sip_port)], env,
                                       self.workdir / "up.log").start()
        wait_for(lambda: api_healthy(self.base_url), 120, "dialtone up to be healthy",
                 processes=(self.process,))
        wait_for(lambda: self.worker_pid() is not None, 60, "its B2BUA worker",
                 processes=(self.process,))
        time.sleep(1.5)  # the worker binds its port once started

    def worker_pid(self) -> int | None:
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if "dialtone.commands.b2bua" in " ".join(child.cmdline()):
                    return int(child.pid)
            except psutil.NoSuchProcess:
                continue
        return None

    def tree(self) -> list[int]:
        """up's processes and the PostgreSQL it started (pg_ctl detaches it)."""
        postgres = self.postgres.pid()
        return [*process_tree(self.pid), *(process_tree(postgres) if postgres else [])]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    stack = Up(tmp_path_factory.mktemp("fault-matrix-up"), free_port(), free_port(),
               free_udp_port())
    try:
        stack.start()
        stack.headers = api_headers(stack.database_url)
        provision_agents(stack.base_url, AGENTS, stack.headers)
        yield stack
    finally:
        if stack.process is not None and stack.process.proc is not None:
            tree = stack.tree()
            stack.process.proc.send_signal(signal.SIGINT)
            try:
                stack.process.proc.wait(30)
            except subprocess.TimeoutExpired:
                stack.process.kill()
            for pid in leftovers(tree, timeout=5):  # never leave a server behind
                os.kill(int(pid.split()[0]), signal.SIGKILL)
            if stack.postgres.is_running():
                stack.postgres.kill()


def _sigterm_up(stack: Up, record: MatrixRecord) -> None:
    tree = stack.tree()
    assert stack.process is not None
    assert stack.process.proc is not None
    stack.process.proc.send_signal(signal.SIGTERM)
    try:
        stack.process.proc.wait(30)
    except subprocess.TimeoutExpired:
        record.problems.append("dialtone up did not stop within 30 s of SIGTERM")
        stack.process.kill()
    record.left_behind = leftovers(tree)
    for pid in record.left_behind:  # so that up can start again on the same ports
        os.kill(int(pid.split()[0]), signal.SIGKILL)
    if stack.postgres.is_running():
        stack.postgres.kill()
    stack.start()


def _sigkill_worker(stack: Up, record: MatrixRecord) -> None:
    killed = stack.worker_pid()
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    record.left_behind = leftovers([killed])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replacement = stack.worker_pid()
        if replacement is not None and replacement != killed:
            record.restarted.append("b2bua")
            return
        time.sleep(0.2)
    record.problems.append("dialtone up did not start another B2BUA worker within 30 s")


CASES = {"sigterm-up": _sigterm_up, "sigkill-b2bua-under-up": _sigkill_worker}


@pytest.mark.parametrize("case", list(CASES))
def test_fault(up: Up, case: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    record = MatrixRecord(case)
    before = store_size(up.database_url)
    # An INVITE sent while `up` restarts is answered by the new worker if a
    # retransmission reaches it within RFC 3261's Timer B (64*T1 = 32 s), the time a
    # real phone waits; a restart on a loaded machine can take longer than 20 s.
    calls = CallLoad(up.workdir, case, up.sip_port, calls=CALLS, rate=RATE, concurrent=2,
                     number="999", answer_within_s=32)
    commands = ApiLoad(up.base_url, AGENTS, up.headers)
    commands.start()
    try:
        wait_for(lambda: store_size(up.database_url) >= before + 10, 60,
                 "the load to be stored")
        started = time.monotonic()
        CASES[case](up, record)
        outcome = calls.wait()
    finally:
        calls.stop()
        record.api = commands.finish()
    result = reconcile_until(up.database_url, up.postgres.dsn("postgres"), timeout=60)
    record.recovery_s = round(time.monotonic() - started, 1)
    record.events, record.lost, record.doubled = result.events, result.lost, result.doubled
    record.events_added = result.events - before
    record.projection_diffs = result.projection_diffs
    record.invites_sent, record.invites_answered = outcome.sent, outcome.answered
    record.invites_silent, record.answers = outcome.silent, outcome.answers
    write_record(tmp_path_factory, record)

    assert record.problems == []
    assert record.left_behind == [], "processes left running"
    assert result.ok, result.explain()
    assert outcome.sent == CALLS, outcome.stats
    assert outcome.silent == 0, f"INVITEs not answered: {outcome}"
