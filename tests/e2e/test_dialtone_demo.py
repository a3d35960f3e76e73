"""`dialtone demo`: a new user sees calls flow through the queues within a minute,
and Ctrl-C leaves nothing running: no process, and no agent available at a phone that
is gone."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from application.callcentre import CallCentreService
from dialtone.commands.users import issue_api_key
from dialtone.database import eventsourcing_env
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from domain.agent import Agent, AgentState
from tests.fixtures.processes import DialtoneProcess, wait_for

pytestmark = pytest.mark.sip


def _answered(base: str, auth: dict[str, str]) -> int:
    try:
        response = httpx2.get(f"{base}/v1/queues/sales/live", timeout=2, headers=auth)
    except httpx2.HTTPError:
        return 0
    if response.status_code != 200:
        return 0
    return int(response.json()["counters"]["answered"])


def _ready(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (everything the demo started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
    return found


def test_demo_answers_calls_within_a_minute_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    data_dir = tmp_path / "demo-data"
    pg_port, http_port = free_port(), free_port()
    demo = dialtone_processes(["demo", "--interval", "2"], {
        "DIALTONE_DATA_DIR": str(data_dir),
        "DIALTONE_EMBEDDED_PG_PORT": str(pg_port),
        "DIALTONE_HTTP_PORT": str(http_port),
    })
    base = f"http://127.0.0.1:{http_port}"

    wait_for(lambda: _ready(base), 60, "the demo's API", processes=(demo,))
    key = issue_api_key(f"postgresql://postgres@127.0.0.1:{pg_port}/dialtone", "e2e-test")
    auth = {"Authorization": f"Bearer {key}"}
    wait_for(lambda: _answered(base, auth) >= 2, 60, "two calls answered in queue sales",
             processes=(demo,))
    assert "answered after" in demo.log.read_text()
    agents = httpx2.get(f"{base}/v1/agents", timeout=5, headers=auth).json()["data"]
    assert {a["key"] for a in agents} >= {"alice", "bob", "carol", "dave"}

    assert demo.proc is not None
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0, demo.tail()
    assert "dialtone demo stopped" in demo.log.read_text()
    server = EmbeddedPostgres(data_dir / "postgres", pg_port)
    assert not server.is_running(), demo.tail()
    wait_for(lambda: not _processes_with(str(data_dir)), 10, "every demo process gone",
             processes=(demo,))

    # Workers starting together did not collide on the event store's DDL.
    worker_logs = "".join(p.read_text(errors="replace")
                          for p in (data_dir / "demo").glob("b2bua-*.log"))
    assert "event store unavailable" not in worker_logs
    assert "concurrently updated" not in worker_logs

    # The agents left with their phones.
    server.start()
    try:
        service = CallCentreService(env=eventsourcing_env(server.dsn("dialtone")))
        states = {key: service.get(Agent, Agent.id_for(key)).state
                  for key in ("alice", "bob", "carol", "dave")}
        service.close()
    finally:
        server.stop()
    assert set(states.values()) == {AgentState.LOGGED_OUT}, states


def test_demo_stops_on_sigterm_as_on_ctrl_c(
    tmp_path: Path, dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    data_dir = tmp_path / "demo-term"
    pg_port, http_port = free_port(), free_port()
    demo = dialtone_processes(["demo", "--workers", "1", "--interval", "30"], {
        "DIALTONE_DATA_DIR": str(data_dir),
        "DIALTONE_EMBEDDED_PG_PORT": str(pg_port),
        "DIALTONE_HTTP_PORT": str(http_port),
    })
    wait_for(lambda: "dialtone demo is up" in demo.log.read_text(errors="replace")
             and _ready(f"http://127.0.0.1:{http_port}"), 90, "the demo up",
             processes=(demo,))

    assert demo.proc is not None
    demo.proc.send_signal(signal.SIGTERM)  # the demo alone, as systemd or a container would
    assert demo.proc.wait(60) == 0, demo.tail()
    assert not EmbeddedPostgres(data_dir / "postgres", pg_port).is_running(), demo.tail()
    wait_for(lambda: not _processes_with(str(data_dir)), 10, "every demo process gone",
             processes=(demo,))
