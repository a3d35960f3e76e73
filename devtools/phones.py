"""Drives softphone processes (``devtools.softphone``) from tests and the demo."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]


@dataclass
class Softphone:
    """One running phone; ``events`` holds everything it reported, in order."""

    user: str
    port: int
    process: subprocess.Popen[str]
    events: list[Event] = field(default_factory=list)
    _inbox: queue.Queue[Event] = field(default_factory=queue.Queue)
    _seen: int = 0

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.events.append(self._inbox.get_nowait())

    def wait(self, event: str, timeout: float = 30.0, **match: Any) -> Event:
        """The next event named ``event`` (after the last one waited for) whose
        facts include ``match``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            for index in range(self._seen, len(self.events)):
                found = self.events[index]
                if found["event"] == event and all(found.get(k) == v for k, v in match.items()):
                    self._seen = index + 1
                    return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user}: no {event} {match} within {timeout}s; "
                                     f"saw {self.events}")
            with contextlib.suppress(queue.Empty):
                self.events.append(self._inbox.get(timeout=min(left, 0.2)))

    def all(self, event: str) -> list[Event]:
        self._drain()
        return [e for e in self.events if e["event"] == event]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("quit")
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._drain()


def _pump(process: subprocess.Popen[str], inbox: queue.Queue[Event]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        with contextlib.suppress(json.JSONDecodeError):
            inbox.put(json.loads(line))


def start_phone(user: str, port: int, workdir: Path, *, args: Sequence[str] = (),
                env: dict[str, str] | None = None, ready_timeout: float = 40.0,
                new_session: bool = False) -> Softphone:
    """Start a phone process and wait until it is listening. ``new_session``: out
    of the terminal's process group, so Ctrl-C reaches only its parent, which
    stops it in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / f"phone-{user}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.softphone", "--user", user,
         "--port", str(port), "--workdir", str(workdir), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
        start_new_session=new_session)
    phone = Softphone(user, port, process)
    threading.Thread(target=_pump, args=(process, phone._inbox), daemon=True).start()
    phone.wait("ready", ready_timeout)
    return phone


@contextlib.contextmanager
def phones() -> Iterator[Callable[..., Softphone]]:
    """A factory of phones, every one stopped on exit."""
    started: list[Softphone] = []

    def start(user: str, port: int, workdir: Path, **kwargs: Any) -> Softphone:
        phone = start_phone(user, port, workdir, **kwargs)
        started.append(phone)
        return phone

    try:
        yield start
    finally:
        for phone in started:
            phone.stop()
