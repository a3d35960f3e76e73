"""Child processes: stopping them the polite way first, and keeping them running.

``Supervisor`` is what `dialtone up` and `dialtone demo` run their B2BUA workers
under: a worker that dies (an abort in pjsip, the OOM killer, a stray kill -9) is
started again on the same port after a short back-off, so its SIP port does not
go silent; restarts are bounded per minute so a worker that cannot start does not
spin, and every one of them is logged.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Spawn = Callable[[], subprocess.Popen[bytes]]
# Called with the exit code when a supervised process has died, before its restart (so
# never while it runs): e.g. ending the calls a B2BUA worker left open.
OnExit = Callable[[int], None]


_PR_SET_PDEATHSIG = 1
# Loaded in the parent so the forked child only makes the call (see die_with_parent).
_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when the thread that started it dies.

    For ``preexec_fn``: it is what keeps a SIGKILLed parent (a test session, `dialtone up`)
    from leaving a JVM or B2BUA workers behind. It runs between fork and exec and only
    calls prctl, which is why preexec_fn is acceptable despite its thread-safety caveat.
    """
    with contextlib.suppress(AttributeError):  # not Linux: no prctl, no safety net
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(process: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    stop_processes([process], timeout)


def stop_processes(processes: list[subprocess.Popen[Any]], timeout: float = 20.0) -> None:
    """SIGTERM to all first (they stop in parallel), then SIGKILL whatever outlives
    ``timeout``."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop within %.0f s: killed", process.pid, timeout)
            process.kill()
            process.wait(5)


@dataclass
class _Slot:
    name: str
    spawn: Spawn
    process: subprocess.Popen[bytes]
    on_exit: OnExit | None = None
    restarts: collections.deque[float] = field(default_factory=collections.deque)
    due: float | None = None  # when the dead process is started again


@dataclass(frozen=True)
class RestartPolicy:
    backoff_s: float = 1.0  # after a death, before the restart
    max_per_window: int = 5  # restarts of one slot within window_s...
    window_s: float = 60.0  # ...beyond which it waits for the window to move on
    poll_s: float = 0.5


class Supervisor:
    """Keeps named child processes running until ``stop``; then stops them all."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def add(self, name: str, spawn: Spawn, *, on_exit: OnExit | None = None,
            ) -> subprocess.Popen[bytes]:
        process = spawn()
        with self._lock:
            self._slots.append(_Slot(name, spawn, process, on_exit))
        return process

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [slot.process for slot in self._slots]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """No more restarts; then SIGTERM every process (SIGKILL after ``timeout``)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self.policy.poll_s * 4 + 10)
        stop_processes(self.processes, timeout)

    def _watch(self) -> None:
        while not self._stopping.wait(self.policy.poll_s):
            with self._lock:
                slots = list(self._slots)
            for slot in slots:
                if self._stopping.is_set():
                    return
                self._check(slot)

    def _check(self, slot: _Slot) -> None:
        code = slot.process.poll()
        if code is None:
            return
        now = time.monotonic()
        if slot.due is None:
            slot.due = self._next_start(slot, now)
            log.warning("%s (pid %d) exited with code %d; restarting in %.1f s", slot.name,
                        slot.process.pid, code, slot.due - now)
            self._report_exit(slot, code)
        if now >= slot.due:
            self._restart(slot, now)

    def _next_start(self, slot: _Slot, now: float) -> float:
        policy = self.policy
        while slot.restarts and now - slot.restarts[0] > policy.window_s:
            slot.restarts.popleft()
        if len(slot.restarts) < policy.max_per_window:
            return now + policy.backoff_s
        log.error("%s restarted %d times within %.0f s: waiting for the window to pass",
                  slot.name, len(slot.restarts), policy.window_s)
        return slot.restarts[0] + policy.window_s

    def _report_exit(self, slot: _Slot, code: int) -> None:
        if slot.on_exit is None:
            return
        try:
            slot.on_exit(code)
        except Exception:  # a failing hook must not stop the supervision
            log.exception("on_exit hook failed for %s", slot.name)

    def _restart(self, slot: _Slot, now: float) -> None:
        try:
            process = slot.spawn()
        except OSError as error:
            log.error("%s could not be restarted: %s", slot.name, error)
            slot.restarts.append(now)
            slot.due = self._next_start(slot, now)
            return
        with self._lock:
            slot.process, slot.due = process, None
            slot.restarts.append(now)
        log.warning("%s restarted (pid %d)", slot.name, process.pid)
