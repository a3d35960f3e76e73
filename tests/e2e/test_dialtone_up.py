"""`dialtone up` (the README's first command) serves CDRs on its embedded default, stops
cleanly on SIGINT and SIGTERM alike, restarts a B2BUA worker that dies, and shares its
data directory's server with other commands without stopping it under them."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx2
import psutil
import pytest

from application.calls import CallService
from devtools.simulate import lifecycles
from dialtone.commands.users import PASSWORD_FILE, issue_api_key
from dialtone.database import eventsourcing_env
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.processes import DIALTONE, DialtoneProcess, wait_for
from tests.fixtures.sip import free_udp_port, udp_exchange, udp_free

Spawn = Callable[..., DialtoneProcess]


def _get(url: str, headers: dict[str, str] | None = None) -> httpx2.Response | None:
    try:
        return httpx2.get(url, timeout=2, headers=headers)
    except httpx2.HTTPError:
        return None


def _ready(base: str) -> bool:
    return (r := _get(f"{base}/readyz")) is not None and r.status_code == 200


class Up:
    """One `dialtone up` on its own data directory and ports."""

    def __init__(self, tmp_path: Path, spawn: Spawn, *, workers: int = 1,
                 data_dir: Path | None = None, pg_port: int | None = None) -> None:
        self.data_dir = data_dir or tmp_path / "data"
        self.pg_port = pg_port or free_port()
        self.http_port = free_port()
        first_sip = free_udp_port()  # free with its next 3 neighbours
        assert workers <= 4
        self.sip_ports = list(range(first_sip, first_sip + workers))  # up takes them in a row
        self.env = {"DIALTONE_DATA_DIR": str(self.data_dir),
                    "DIALTONE_EMBEDDED_PG_PORT": str(self.pg_port),
                    "DIALTONE_HTTP_PORT": str(self.http_port)}
        self.process = spawn(["up", "--sip-port", str(self.sip_ports[0]),
                              "--b2bua-workers", str(workers)], self.env)
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.server = EmbeddedPostgres(self.data_dir / "postgres", self.pg_port)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.process.proc is not None
        return self.process.proc

    def worker_log(self, port: int) -> Path:
        return self.data_dir / "logs" / f"b2bua-{port}.log"

    def wait_ready(self) -> None:
        wait_for(lambda: _ready(self.base), 90, "dialtone up to be ready",
                 processes=(self.process,))
        for port in self.sip_ports:
            wait_for(lambda p=port: _answers_options(p), 60,  # type: ignore[misc]
                     f"the B2BUA worker on {port} to answer OPTIONS", processes=(self.process,))

    def workers(self) -> list[psutil.Process]:
        """The live B2BUA worker children (a dead one not reaped yet is left out)."""
        found = []
        for child in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):  # a zombie has no command line
                if "dialtone.commands.b2bua" in " ".join(child.cmdline()):
                    found.append(child)
        return found


def _answers_options(port: int) -> bool:
    """A real SIP OPTIONS to the worker: pjsip answers 200 when it is up."""
    branch = f"z9hG4bK{port}{free_port()}"
    message = (f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=probe\r\n"
               f"To: <sip:probe@127.0.0.1:{port}>\r\nCall-ID: {branch}@test\r\n"
               "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    return any(line.startswith(b"SIP/2.0 200") for line in udp_exchange(port, message))


def _gone(processes: list[psutil.Process]) -> bool:
    def dead(process: psutil.Process) -> bool:
        try:
            return bool(process.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True
    return all(dead(p) for p in processes)


def _stuck_request(port: int) -> socket.socket:
    """A careless client: a POST whose body never finishes (uvicorn waits on it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    return sock


def test_up_runs_embedded_postgres_projections_and_api_until_interrupted(
    tmp_path: Path, dialtone_processes: Spawn,
) -> None:
    up = Up(tmp_path, dialtone_processes)
    up.wait_ready()

    # A B2BUA worker would write these through the same application service.
    database_url = f"postgresql://postgres@127.0.0.1:{up.pg_port}/dialtone"
    [call_id] = lifecycles(CallService(env=eventsourcing_env(database_url)), 1, "up")
    auth = {"Authorization": f"Bearer {issue_api_key(database_url, 'e2e-test')}"}

    def cdr_served() -> bool:
        response = _get(f"{up.base}/v1/calls/{call_id}", auth)
        return response is not None and response.status_code == 200 and (
            response.json().get("disposition") == "answered")

    wait_for(cdr_served, 30, "the call's CDR through the API", processes=(up.process,))

    # The first start made the admin and printed, once, how to log in as it.
    password = (up.data_dir / PASSWORD_FILE).read_text().strip()
    printed = up.process.log.read_text()
    assert printed.count(password) == 1
    assert f"$(cat {up.data_dir / PASSWORD_FILE})" in printed
    token = httpx2.post(f"{up.base}/v1/auth/token", timeout=10,
                       data={"username": "admin", "password": password}).json()["access_token"]
    calls = httpx2.get(f"{up.base}/v1/calls", timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert calls.status_code == 200, calls.text

    # A request left half-sent must not hold the shutdown for ever.
    with _stuck_request(up.http_port):
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(60) == 0
    assert not up.server.is_running()
    assert udp_free(up.sip_ports[0]), "the B2BUA worker outlived dialtone up"


def test_sigterm_stops_workers_and_embedded_postgres_like_ctrl_c(
    tmp_path: Path, dialtone_processes: Spawn,
) -> None:
    up = Up(tmp_path, dialtone_processes, workers=2)
    up.wait_ready()
    children = up.workers()
    assert len(children) == 2
    postmaster = up.server.pid()
    assert postmaster is not None

    up.proc.send_signal(signal.SIGTERM)  # as a container runtime or systemd stops it
    assert up.proc.wait(60) == 0, up.process.tail()
    wait_for(lambda: _gone([*children, psutil.Process(postmaster)]), 30,
             "the B2BUA workers and PostgreSQL to exit", processes=(up.process,))
    assert not up.server.is_running()
    assert "embedded PostgreSQL stopped" in up.process.log.read_text()


def test_a_sigkilled_up_leaves_no_b2bua_worker_behind(
    tmp_path: Path, dialtone_processes: Spawn,
) -> None:
    up = Up(tmp_path, dialtone_processes, workers=2)
    up.wait_ready()
    children = up.workers()
    assert len(children) == 2

    up.proc.kill()  # no cleanup runs: only the kernel's parent-death signal is left
    up.proc.wait(10)
    wait_for(lambda: _gone(children), 30, "the B2BUA workers to exit with their parent",
             processes=(up.process,))


def test_a_killed_b2bua_worker_is_restarted_and_answers_sip_again(
    tmp_path: Path, dialtone_processes: Spawn,
) -> None:
    up = Up(tmp_path, dialtone_processes)
    up.wait_ready()
    [worker] = up.workers()

    worker.send_signal(signal.SIGKILL)
    wait_for(lambda: _gone([worker]), 10, "the worker to die", processes=(up.process,))
    wait_for(lambda: any(w.pid != worker.pid for w in up.workers()), 30,
             "a new worker process", processes=(up.process,))
    wait_for(lambda: _answers_options(up.sip_ports[0]), 60,
             "the restarted worker to answer OPTIONS", processes=(up.process,))
    assert "restarted" in up.process.log.read_text()


def test_a_second_command_on_the_same_data_dir_neither_breaks_nor_stops_the_first(
    tmp_path: Path, dialtone_processes: Spawn,
) -> None:
    first = Up(tmp_path, dialtone_processes)
    first.wait_ready()

    # Same HTTP port: refused before touching anything, with a message saying why.
    refused = subprocess.run(
        [str(DIALTONE), "demo", "--run-for", "5"], capture_output=True, text=True, timeout=120,
        env={**first.process.env}, check=False)
    assert refused.returncode != 0
    assert f"port {first.http_port}" in refused.stderr + refused.stdout
    assert _ready(first.base)
    assert first.server.is_running()

    # Another `up` on other ports shares the server; stopping it leaves the server to the first.
    second = Up(tmp_path, dialtone_processes, data_dir=first.data_dir, pg_port=first.pg_port)
    second.wait_ready()
    assert "first start" not in second.process.log.read_text()  # the admin exists already
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(60) == 0, second.process.tail()
    assert first.server.is_running()
    assert _ready(first.base)

    # The last one out stops it.
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(60) == 0, first.process.tail()
    assert not first.server.is_running()


@pytest.fixture(autouse=True)
def _no_leftover_server(tmp_path: Path) -> object:
    """Whatever a failing test left running on its data directory is stopped."""
    yield None
    for pid_file in tmp_path.glob("*/postgres/postmaster.pid"):
        server = EmbeddedPostgres(pid_file.parent, 0)
        if server.is_running():
            server.stop(mode="immediate")
