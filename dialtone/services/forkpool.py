"""A pool of forked worker processes: one parent that imported everything once, N
children that share its pages copy-on-write, each restarted when it dies.

Used by ``dialtone b2bua --workers N`` (docs/b2bua.md, *The pool*). The parent is
single-threaded on purpose: ``fork`` copies only the forking thread, so a lock some
other thread held at that moment (a metrics scrape, logging) would stay locked for
ever in the child. Everything the parent does between forks (reaping children,
restarting them after a back-off, answering metrics scrapes) runs in one loop.

A child runs ``run_child(index)`` and exits with its return value; whatever it needs
that cannot cross a fork (pjsua2's endpoint, threads, database connections) it
creates itself, after the fork.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from dialtone.services.processes import die_with_parent

log = logging.getLogger(__name__)

RunChild = Callable[[int], int]
# Called in the parent with (index, exit status) when a child has died, before its
# restart: e.g. telling Kamailio to send it nothing meanwhile.
OnExit = Callable[[int, int], None]
# Called in the parent with the index of a child just restarted.
OnRestart = Callable[[int], None]


@dataclass(frozen=True)
class PoolPolicy:
    backoff_s: float = 1.0  # after a first death, before the restart; doubles each time...
    max_backoff_s: float = 30.0  # ...up to this, while the child keeps dying
    max_per_window: int = 5  # restarts of one child within window_s...
    window_s: float = 60.0  # ...beyond which it waits for the window to move on
    poll_s: float = 0.2  # the parent loop's turn: how soon a death is seen
    stop_timeout_s: float = 20.0  # SIGTERM, then SIGKILL after this


@dataclass
class Child:
    index: int
    pid: int | None = None  # None: dead, waiting for ``due``
    due: float | None = None
    restarts: collections.deque[float] = field(default_factory=collections.deque)
    last_status: int | None = None


def exit_code(status: int) -> int:
    """A wait status as a shell would print it: the exit code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class ForkPool:
    """Forks ``count`` children running ``run_child(index)``; keeps them running
    until ``stop``."""

    def __init__(self, count: int, run_child: RunChild, *, policy: PoolPolicy | None = None,
                 on_exit: OnExit | None = None, on_restart: OnRestart | None = None,
                 observe: Callable[[ForkPool], None] = lambda _pool: None,
                 after_fork: Callable[[], None] = lambda: None) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one child")
        self.policy = policy or PoolPolicy()
        self.children = [Child(i) for i in range(count)]
        self.restarts_total = 0
        self._run_child = run_child
        self.on_exit = on_exit
        self.on_restart = on_restart
        self._observe = observe  # after every change: metrics
        self._after_fork = after_fork  # in the child first: close the parent's sockets
        self._stopping = False

    @property
    def up(self) -> int:
        return sum(1 for child in self.children if child.pid is not None)

    def start(self) -> None:
        for child in self.children:
            self._fork(child)
        self._observe(self)

    def run(self, stop_requested: Callable[[], bool],
            idle: Callable[[float], None] | None = None) -> None:
        """Until ``stop_requested()``: reap dead children and restart them when due.
        ``idle(seconds)`` waits between turns (e.g. serving a metrics request);
        default: sleep."""
        wait = idle or time.sleep
        while not stop_requested():
            self.turn()
            wait(self.policy.poll_s)

    def turn(self) -> None:
        """One look at the children: reap the dead, restart the due."""
        changed = self._reap()
        now = time.monotonic()
        for child in self.children:
            if child.pid is None and child.due is not None and now >= child.due \
                    and not self._stopping:
                self._restart(child, now)
                changed = True
        if changed:
            self._observe(self)

    def stop(self) -> None:
        """No more restarts; SIGTERM every child, SIGKILL those alive after the timeout."""
        self._stopping = True
        for child in self.children:
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_timeout_s
        while self.up and time.monotonic() < deadline:
            if not self._reap(restart=False):
                time.sleep(0.05)
        for child in self.children:
            if child.pid is not None:
                log.warning("worker %d (pid %d) did not stop within %.0f s: killed",
                            child.index, child.pid, self.policy.stop_timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)
                child.pid = None
        self._observe(self)

    # Internals.

    def _fork(self, child: Child) -> None:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            self._child_main(child.index)
        child.pid, child.due = pid, None
        log.info("worker %d started (pid %d)", child.index, pid)

    def _child_main(self, index: int) -> None:
        code = 1
        try:
            # The parent's handlers set its flags; the child installs its own.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            die_with_parent()  # a SIGKILLed parent leaves no worker behind
            self._after_fork()
            code = self._run_child(index)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except BaseException:  # the child must end here, whatever happened
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                logging.shutdown()
            os._exit(code)

    def _reap(self, *, restart: bool = True) -> bool:
        """Collect every child that has exited; True if any did."""
        reaped = False
        for child in self.children:
            if child.pid is None:
                continue
            try:
                pid, status = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped elsewhere
                pid, status = child.pid, 0
            if pid == 0:
                continue
            reaped = True
            child.pid, child.last_status = None, status
            if self._stopping or not restart:
                continue
            now = time.monotonic()
            child.due = self._next_start(child, now)
            log.warning("worker %d (pid %d) exited with code %d; restarting in %.1f s",
                        child.index, pid, exit_code(status), child.due - now)
            self._report_exit(child, status)
        return reaped

    def _next_start(self, child: Child, now: float) -> float:
        """Back-off doubling with each recent restart, capped; and at most
        ``max_per_window`` restarts per window (the rest wait for it to move on)."""
        policy = self.policy
        while child.restarts and now - child.restarts[0] > policy.window_s:
            child.restarts.popleft()
        if len(child.restarts) >= policy.max_per_window:
            log.error("worker %d restarted %d times within %.0f s: waiting for the window "
                      "to pass", child.index, len(child.restarts), policy.window_s)
            return child.restarts[0] + policy.window_s
        return now + min(policy.max_backoff_s, policy.backoff_s * 2.0 ** len(child.restarts))

    def _report_exit(self, child: Child, status: int) -> None:
        on_exit = self.on_exit
        if on_exit is not None:
            self._hook("on_exit", child, lambda: on_exit(child.index, status))

    def _hook(self, name: str, child: Child, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:  # a failing hook must not stop the supervision
            log.exception("%s hook failed for worker %d", name, child.index)

    def _restart(self, child: Child, now: float) -> None:
        try:
            self._fork(child)
        except OSError as error:  # EAGAIN, ENOMEM: try again after the back-off
            log.error("worker %d could not be restarted: %s", child.index, error)
            child.due = self._next_start(child, now)
            child.restarts.append(now)
            return
        child.restarts.append(now)
        self.restarts_total += 1
        log.warning("worker %d restarted (pid %d)", child.index, child.pid)
        on_restart = self.on_restart
        if on_restart is not None:
            self._hook("on_restart", child, lambda: on_restart(child.index))
