"""Every long-running dialtone process stops cleanly on SIGTERM (containers, systemd)
exactly as on SIGINT (Ctrl-C): exit code 0, and its heartbeat marked stopped, which
only its own shutdown path writes. (`up` and `demo`: tests/e2e/test_dialtone_up.py
and test_dialtone_demo.py.)

Each test starts two of the command at once, each on a database (and topic prefix)
of its own so that they cannot meet: one is stopped with SIGTERM, the other with
SIGINT. Their start-ups (most of a test's time) overlap, rather than each signal
paying for a start of its own in a test of its own.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx2
import psycopg
import pytest

from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.redis import RedisServer, fresh_db, redis_server
from tests.fixtures.s3 import S3Server, s3_server
from tests.fixtures.sip import free_udp_port

__all__ = ["redis_server", "s3_server"]  # the fixtures, shared

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Spawn = Callable[..., DialtoneProcess]


def _beat(database_url: str, pid: int) -> tuple[bool, bool]:
    """(beating, marked stopped) for the process ``pid``'s heartbeat row."""
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            row = conn.execute("SELECT stopped_at IS NOT NULL FROM service_heartbeats "
                               "WHERE pid = %s", (pid,)).fetchone()
    except psycopg.Error:
        return False, False
    return (row is not None, bool(row and row[0]))


def _stop_with(process: DialtoneProcess, signum: signal.Signals) -> int:
    assert process.proc is not None
    process.proc.send_signal(signum)  # the process alone, as a supervisor would
    return process.proc.wait(60)


def _run_beating(args: Callable[[], list[str]], env: Callable[[], dict[str, str]],
                 databases: tuple[str, str], spawn: Spawn) -> None:
    """`dialtone <args()>` twice at once, one per database; stop one with each signal."""
    started: list[tuple[signal.Signals, str, DialtoneProcess]] = []
    for signum, database_url in zip(SIGNALS, databases, strict=True):
        apply_migrations(database_url)
        process = spawn(args(), {"DATABASE_URL": database_url,
                                 "DIALTONE_HEARTBEAT_INTERVAL_S": "0.3", **env()})
        started.append((signum, database_url, process))
    for _, database_url, process in started:
        assert process.proc is not None
        pid = process.proc.pid
        wait_for(lambda d=database_url, p=pid: _beat(d, p)[0],  # type: ignore[misc]
                 90, f"`dialtone {process.args[0]}` beating", processes=(process,))
    for signum, database_url, process in started:
        assert process.proc is not None
        pid = process.proc.pid
        assert _stop_with(process, signum) == 0, f"{signum.name}: {process.tail()}"
        assert _beat(database_url, pid) == (True, True), f"{signum.name}: {process.tail()}"


def test_registrations_observer_stops_cleanly(database_url: str, second_database: str,
                                              redis_server: RedisServer,
                                              dialtone_processes: Spawn) -> None:
    """It kept no heartbeat before: /healthz could not see it stop or hang."""
    registrar = fresh_db(redis_server)
    _run_beating(lambda: ["registrations", "--redis-url", registrar.url, "--interval", "0.5"],
                 _no_env, (database_url, second_database), dialtone_processes)


def test_recordings_uploader_stops_cleanly(database_url: str, second_database: str,
                                           s3_server: S3Server, tmp_path: Path,
                                           dialtone_processes: Spawn) -> None:
    """It kept no heartbeat before: /healthz could not see it stop or hang."""
    env = {**s3_server.env(s3_server.new_bucket()),
           "DIALTONE_RECORDINGS_DIRECTORY": str(tmp_path / "recordings")}
    _run_beating(lambda: ["recordings"], lambda: env, (database_url, second_database),
                 dialtone_processes)


def _no_env() -> dict[str, str]:
    return {}


def test_router_stops_cleanly(database_url: str, second_database: str,
                              dialtone_processes: Spawn) -> None:
    _run_beating(lambda: ["router"], _no_env, (database_url, second_database),
                 dialtone_processes)


@pytest.mark.sip
def test_b2bua_worker_stops_cleanly(database_url: str, second_database: str,
                                    dialtone_processes: Spawn) -> None:
    _run_beating(lambda: ["b2bua", "--port", str(free_udp_port())], _no_env,
                 (database_url, second_database), dialtone_processes)


@pytest.mark.kafka
@pytest.mark.parametrize("command", ["relay", "worker", "webhooks"])
def test_kafka_processes_stop_cleanly(command: str, database_url: str, second_database: str,
                                      kafka_bootstrap: str, dialtone_processes: Spawn) -> None:
    def env() -> dict[str, str]:  # a topic prefix (and Faust group) of each one's own
        return {"DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "DIALTONE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}."}
    _run_beating(lambda: [command], env, (database_url, second_database), dialtone_processes)


def test_api_stops_cleanly(database_url: str, second_database: str,
                           dialtone_processes: Spawn) -> None:
    apis: list[tuple[signal.Signals, int, DialtoneProcess]] = []
    for signum, dsn in zip(SIGNALS, (database_url, second_database), strict=True):
        apply_migrations(dsn)
        port = free_port()
        apis.append((signum, port, dialtone_processes(["api", "--port", str(port)],
                                                      {"DATABASE_URL": dsn})))

    def ready(port: int) -> bool:
        try:
            return httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    for _, port, api in apis:
        wait_for(lambda p=port: ready(p), 60, "the API ready",  # type: ignore[misc]
                 processes=(api,))
    for signum, _, api in apis:
        assert _stop_with(api, signum) == 0, f"{signum.name}: {api.tail()}"
