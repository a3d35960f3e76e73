"""`serve` freezes what the process built before serving out of the garbage
collector (bench/api.py: a full collection of an API process's ~135,000 startup
objects took ~65 ms of CPU on the loop, about 1 ms once they are frozen)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
from fastapi import FastAPI

from dialtone.services.ports import free_port
from dialtone.services.serving import StopSignals, serve

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"pong": "yes"}


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_serve_freezes_the_startup_objects_before_it_answers(unfrozen: None) -> None:
    assert gc.get_freeze_count() == 0
    port, stop = free_port(), StopSignals()
    server = threading.Thread(target=serve, args=(app, "127.0.0.1", port, stop), daemon=True)
    server.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx2.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
            break
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    frozen = gc.get_freeze_count()
    stop.request()
    server.join(10)
    assert not server.is_alive()
    assert frozen > 10_000  # every module, class and function imported so far
