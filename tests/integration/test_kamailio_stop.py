"""devtools.kamailio's Kamailio.stop() leaves no Kamailio process behind, not even the
children orphaned when the main process was killed first (they would keep the
proxy's port and the next test's Kamailio could not bind it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from devtools.kamailio import child_pids, start_kamailio
from tests.fixtures.sip import free_udp_port, wait_until

pytestmark = pytest.mark.sip


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts: it holds no socket)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_stop_kills_the_children_orphaned_by_the_main_process_s_death(tmp_path: Path) -> None:
    proxy = start_kamailio(tmp_path / "kamailio", [free_udp_port()], port=free_udp_port())
    children = child_pids(proxy.process.pid)
    try:
        assert children, "Kamailio forks its children at start"
        os.kill(proxy.process.pid, signal.SIGKILL)
        proxy.process.wait(10)
        assert not all(_gone(pid) for pid in children)  # orphans, not stopped with it

        proxy.stop(timeout=10)

        wait_until(lambda: all(_gone(pid) for pid in children), "every child gone",
                   timeout=10)
        assert _port_free(proxy.port)
    finally:
        for pid in children:  # never leave one behind, even when the test fails
            with contextlib.suppress(OSError):
                if b"kamailio" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
