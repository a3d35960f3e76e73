"""Checking the ports a command will listen on before it starts anything.

A command that found its HTTP or SIP port taken used to fail half-way, after it
had started (and, on its way out, stopped) things another command was using;
checking first lets it refuse with a message and touch nothing.
"""

from __future__ import annotations

import socket


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
