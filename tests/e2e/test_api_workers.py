"""`dialtone api --workers N` (and `up --api-workers N`): N real API processes on
one port, each a full app (commands too), and SIGTERM stopping them all with
exit code 0. (Replacing a dead worker is uvicorn's supervisor's, tested there.)"""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx2
import psutil

from application.identity.model import Role
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.integration.api_support import api_key


def _workers(parent: int) -> set[int]:
    """The spawned API worker processes of `parent`."""
    try:
        children = psutil.Process(parent).children()
    except psutil.NoSuchProcess:
        return set()
    found = set()
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # gone, or a zombie not reaped yet: not serving
            continue
    return found


def _answers(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def test_api_workers_serve_one_port_and_stop_on_sigterm(
        database_url: str, dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    apply_migrations(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = dialtone_processes(["api", "--port", str(port), "--workers", "2"],
                             {"DATABASE_URL": database_url})
    assert api.proc is not None
    parent = api.proc.pid
    wait_for(lambda: len(_workers(parent)) == 2 and _answers(base), 120,
             "two API workers answering", processes=(api,))
    # A command through a worker: each is the whole app, on the parent's database.
    key = {"Authorization": f"Bearer {api_key(database_url, Role.ADMIN)}"}
    created = httpx2.post(f"{base}/v1/agents", json={"key": "alice", "name": "Alice"},
                         headers=key, timeout=30)
    assert created.status_code == 201, created.text

    everyone = _workers(parent)
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(60) == 0, api.tail()
    assert not [pid for pid in everyone if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
