"""Helpers for the live-feed tests: the app served by uvicorn in a thread (an
event stream needs a real server: the test client buffers whole bodies), and an
SSE reader that collects events on its own thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import uvicorn
from fastapi import FastAPI

from dialtone.services.ports import free_port

POLL_S = 0.05


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """`app` on a loopback port until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Event:
    event: str
    id: int
    data: Any


@dataclass
class SseReader:
    """Reads `url` as an event stream on a thread; `events` fills as they come."""

    url: str
    headers: dict[str, str]
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    ended: bool = False
    status: int | None = None
    _client: httpx2.Client | None = None

    def start(self) -> SseReader:
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: self.status is not None or self.ended, 30, f"{self.url} answered")
        return self

    def _read(self) -> None:
        self._client = httpx2.Client(timeout=httpx2.Timeout(5, read=None))
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments += 1
                    elif line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                    elif "data" in fields:
                        self.events.append(Event(fields["event"], int(fields["id"]),
                                                 json.loads(fields["data"])))
                        fields = {}
                    else:
                        fields = {}
        except httpx2.HTTPError:
            pass
        finally:
            self.ended = True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def wait_for(self, count: int, timeout: float = 30) -> list[Event]:
        wait_until(lambda: len(self.events) >= count, timeout,
                   f"{count} events from {self.url} (have {self.events})")
        return self.events

    def state(self) -> Any:
        """The view these events build: the last snapshot, merge patches applied."""
        state: Any = None
        for event in self.events:
            state = event.data if event.event == "snapshot" else apply_patch(state, event.data)
        return state


def apply_patch(target: Any, patch: Any) -> Any:
    """RFC 7396, as the page applies it (api/static/live.js)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_patch(result.get(key), value)
    return result
