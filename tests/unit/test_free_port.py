"""free_port chooses listening ports no outgoing connection can take meanwhile."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dialtone.services import ports
from dialtone.services.ports import free_port


def _ephemeral_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_a_free_port_is_below_the_kernels_ephemeral_range_and_bindable() -> None:
    port = free_port()
    assert 20000 <= port < _ephemeral_start()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # raises if it was not free


def test_a_port_is_never_handed_out_twice_even_before_it_is_bound() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        busy = _listen_below_the_ephemeral_range(taken)
        picks = iter([busy, busy, busy + 1])
        monkeypatch.setattr(random, "randrange", lambda *_: next(picks))
        monkeypatch.setattr(ports, "_handed_out", set())  # this test's picks alone
        assert ports.free_port() == busy + 1


def test_each_share_of_the_range_hands_out_ports_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.SHARE_ENV, "")  # take_share sets it; restored after the test
    shares = []
    for index in range(2):
        ports.take_share(index, 2)
        shares.append({free_port() for _ in range(50)})
    assert max(shares[0]) < min(shares[1])
    assert min(shares[0]) >= 20000
    assert max(shares[1]) < _ephemeral_start()


def test_a_started_process_chooses_in_the_share_it_inherits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.SHARE_ENV, "")
    ports.take_share(1, 3)
    low, top = (int(end) for end in os.environ[ports.SHARE_ENV].split("-"))
    chosen = subprocess.run(
        [sys.executable, "-c", "from dialtone.services.ports import free_port; print(free_port())"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    assert low <= int(chosen) < top


def _listen_below_the_ephemeral_range(sock: socket.socket) -> int:
    for port in range(21000, 22000, 2):  # busy + 1 must be free too: checked by free_port
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        sock.listen()
        return port
    raise AssertionError("no port to hold between 21000 and 22000")
