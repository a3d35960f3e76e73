"""Every long-running dialtone process stops cleanly on SIGTERM (containers, systemd)
exactly as on SIGINT (Ctrl-C): exit code 0, and its heartbeat marked stopped, which
only its own shutdown path writes. (`up` and `demo`: tests/e2e/test_dialtone_up.py
and test_dialtone_demo.py.)"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest

from dialtone.migrations import apply_migrations
from dialtone.services.postgres import free_port
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.sip import free_udp_port

SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT")]


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


def _run_beating(args: list[str], env: dict[str, str], database_url: str,
                 spawn: Callable[..., DialtoneProcess], signum: signal.Signals) -> None:
    apply_migrations(database_url)
    process = spawn(args, {"DATABASE_URL": database_url, "DIALTONE_HEARTBEAT_INTERVAL_S": "0.3",
                           **env})
    assert process.proc is not None
    pid = process.proc.pid
    wait_for(lambda: _beat(database_url, pid)[0], 90, f"`dialtone {args[0]}` beating",
             processes=(process,))
    assert _stop_with(process, signum) == 0, process.tail()
    assert _beat(database_url, pid) == (True, True), process.tail()


@pytest.mark.parametrize("signum", SIGNALS)
def test_router_stops_cleanly(signum: signal.Signals, database_url: str,
                              dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    _run_beating(["router"], {}, database_url, dialtone_processes, signum)


@pytest.mark.sip
@pytest.mark.parametrize("signum", SIGNALS)
def test_b2bua_worker_stops_cleanly(signum: signal.Signals, database_url: str,
                                    dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    _run_beating(["b2bua", "--port", str(free_udp_port())], {}, database_url,
                 dialtone_processes, signum)


@pytest.mark.kafka
@pytest.mark.parametrize("command", ["relay", "worker"])
@pytest.mark.parametrize("signum", SIGNALS)
def test_kafka_processes_stop_cleanly(command: str, signum: signal.Signals, database_url: str,
                                      kafka_bootstrap: str,
                                      dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    env = {"DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "DIALTONE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}."}
    _run_beating([command], env, database_url, dialtone_processes, signum)


@pytest.mark.parametrize("signum", SIGNALS)
def test_api_stops_cleanly(signum: signal.Signals, database_url: str,
                           dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    apply_migrations(database_url)
    port = free_port()
    api = dialtone_processes(["api", "--port", str(port)], {"DATABASE_URL": database_url})

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 60, "the API ready", processes=(api,))
    assert _stop_with(api, signum) == 0, api.tail()
