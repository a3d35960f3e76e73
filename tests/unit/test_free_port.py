"""free_port chooses listening ports no outgoing connection can take meanwhile."""

from __future__ import annotations

import random
import socket
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


def _listen_below_the_ephemeral_range(sock: socket.socket) -> int:
    for port in range(21000, 22000, 2):  # busy + 1 must be free too: checked by free_port
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        sock.listen()
        return port
    raise AssertionError("no port to hold between 21000 and 22000")
