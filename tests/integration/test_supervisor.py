"""The supervisor `up` and `demo` run their B2BUA workers under, on real child processes:
a dead one is reported then restarted, a crash loop is held back by the per-minute
bound, and stop() leaves nothing running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from dialtone.services.processes import RestartPolicy, Supervisor
from tests.fixtures.processes import wait_for

FAST = RestartPolicy(backoff_s=0.2, max_per_window=2, window_s=600.0, poll_s=0.05)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_a_killed_process_is_reported_then_restarted_and_stop_ends_all() -> None:
    exits: list[int] = []
    supervisor = Supervisor(FAST)
    first = supervisor.add("sleeper a", _sleeper, on_exit=exits.append)
    other = supervisor.add("sleeper b", _sleeper)
    supervisor.start()
    try:
        first.send_signal(signal.SIGKILL)
        wait_for(lambda: supervisor.processes[0].pid != first.pid, 10, "a restart")
        assert exits == [-signal.SIGKILL]
        assert supervisor.processes[0].poll() is None
        assert supervisor.processes[1] is other  # the live one was left alone
    finally:
        supervisor.stop(timeout=10)
    assert all(p.poll() is not None for p in supervisor.processes)


def test_restarts_are_bounded_per_window() -> None:
    spawned: list[subprocess.Popen[bytes]] = []

    def crashing() -> subprocess.Popen[bytes]:
        spawned.append(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
        return spawned[-1]

    exits: list[int] = []
    supervisor = Supervisor(FAST)
    supervisor.add("crasher", crashing, on_exit=exits.append)
    supervisor.start()
    try:
        wait_for(lambda: len(exits) == 3, 20, "three deaths (first run + two restarts)")
        time.sleep(1.0)  # several back-offs: no third restart within the window
        assert len(spawned) == 3
        assert exits == [3, 3, 3]
    finally:
        supervisor.stop(timeout=10)
