"""Checking the ports a command will listen on before it starts anything.

A command that found its HTTP or SIP port taken used to fail half-way, after it
had started (and, on its way out, stopped) things another command was using;
checking first lets it refuse with a message and touch nothing.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# The kernel hands out ports of its ephemeral range (ip_local_port_range) to every
# outgoing connection: a listening port chosen there (bind to port 0) can be taken
# by one before the server binds it (a test's embedded PostgreSQL failed to start
# on "Address already in use" in CI). Ports below that range are only ever taken by
# an explicit bind, so free_port chooses among them.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000
_handed_out: set[int] = set()
# Processes choosing ports on one machine at once (the test suite's xdist workers) do not
# know each other's choices: each takes a share of the range (``take_share``), which the
# processes it starts inherit through this variable ("low-high", high excluded).
SHARE_ENV = "DIALTONE_FREE_PORTS"


def tcp_port_free(host: str, port: int) -> bool:
    # SO_REUSEADDR as uvicorn binds: a port in TIME_WAIT is free for it too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def udp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def busy_ports(host: str, *, tcp: tuple[int, ...] = (), udp: tuple[int, ...] = ()) -> list[str]:
    """What is taken among the ports, e.g. ``['HTTP port 8080 (tcp)']``; empty when all free."""
    busy = [f"HTTP port {port} (tcp)" for port in tcp if not tcp_port_free(host, port)]
    busy += [f"SIP port {port} (udp)" for port in udp if not udp_port_free(host, port)]
    return busy


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` for a server to listen on: below the kernel's
    ephemeral range, so no outgoing connection takes it meanwhile, within this
    process's share of that range, and never handed out twice by this process (a
    server may not have bound it yet)."""
    low, top = _range()
    for _ in range(200):
        port = random.randrange(low, top) if top > low else 0  # noqa: S311 - not a secret
        if port and port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            chosen = int(sock.getsockname()[1])
        _handed_out.add(chosen)
        return chosen
    raise OSError(f"no free TCP port on {host} between {low} and {top}")


def take_share(index: int, count: int) -> None:
    """From now on this process and those it starts choose ports in the ``index``-th of
    ``count`` equal shares of the range alone (``index`` from 0)."""
    low, top = _LOWEST, _ephemeral_start()
    size = (top - low) // count
    os.environ[SHARE_ENV] = f"{low + index * size}-{low + (index + 1) * size}"


def _range() -> tuple[int, int]:
    share = os.environ.get(SHARE_ENV)
    if share:
        low, _, top = share.partition("-")
        return int(low), int(top)
    return _LOWEST, _ephemeral_start()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
