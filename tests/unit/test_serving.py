"""`serve`: no access-log line per request unless asked (DIALTONE_ACCESS_LOG), and the
fast loop and HTTP parser uvicorn[standard] installs (bench/api.py measured both)."""

from __future__ import annotations

import logging
import threading
import time

import httpx2
import pytest
from fastapi import FastAPI

from dialtone.services.ports import free_port
from dialtone.services.serving import StopSignals, serve
from dialtone.settings import Settings

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"pong": "yes"}


def serve_one_request(**options: bool) -> None:
    """Serve `app` on loopback, GET /ping once, stop (all bounded)."""
    port, stop = free_port(), StopSignals()
    server = threading.Thread(target=serve, args=(app, "127.0.0.1", port, stop),
                              kwargs=options, daemon=True)
    server.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx2.get(f"http://127.0.0.1:{port}/ping", timeout=1).json() == {"pong": "yes"}
            break
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert stop.server is not None
    assert stop.server.config.loop == "uvloop"
    assert stop.server.config.http == "httptools"
    stop.request()
    server.join(10)
    assert not server.is_alive()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]


@pytest.fixture
def caplog_access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """uvicorn, told access_log=False, stops its access logger's propagation for the
    rest of the process; each test starts as a fresh process would."""
    logging.getLogger("uvicorn.access").propagate = True
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    return caplog


def test_no_access_log_line_by_default(caplog_access: pytest.LogCaptureFixture) -> None:
    assert Settings().access_log is False
    serve_one_request()
    assert access_lines(caplog_access) == []


def test_the_access_log_when_asked(caplog_access: pytest.LogCaptureFixture) -> None:
    serve_one_request(access_log=True)
    lines = access_lines(caplog_access)
    assert len(lines) == 1
    assert "/ping" in lines[0]
