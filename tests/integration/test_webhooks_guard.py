"""The sender's SSRF guard at connect time, against a real receiver on 127.0.0.1.

A name (not a literal address) never reaches `check_url`'s literal check: the
sender's resolver must check what it resolves to, before any connection.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.routes.webhooks import new_secret
from application.webhooks.delivery import client
from application.webhooks.guard import TargetRefused, parse_allow
from tests.integration.webhook_support import FAST, receiving


async def _post(url: str, allow: str) -> int:
    http = client(FAST, parse_allow(allow))
    try:
        async with http.post(url, data=b"{}", allow_redirects=False) as response:
            return response.status
    finally:
        await http.close()


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting() -> None:
    with receiving(new_secret()) as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        with pytest.raises(TargetRefused, match="loopback"):
            asyncio.run(_post(by_name, ""))
        assert receiver.paths == []  # no request reached it
        # The same name is used once the allow-list permits what it resolves to.
        assert asyncio.run(_post(by_name, "127.0.0.1/32,::1/128")) == 401  # unsigned
        assert receiver.paths == ["/hooks/dialtone"]


def test_the_sender_reuses_its_connection() -> None:
    """Consecutive deliveries to one keep-alive receiver go over one connection (a
    connection per delivery was a handshake each, and a port each under load)."""
    peers: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection open between requests

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            peers.append(self.client_address[1])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    async def three() -> list[int]:
        http = client(FAST, parse_allow(FAST.allow_nets))
        try:
            statuses = []
            for _ in range(3):
                async with http.post(url, data=b"{}", allow_redirects=False) as response:
                    await response.read()
                    statuses.append(response.status)
            return statuses
        finally:
            await http.close()

    try:
        assert asyncio.run(three()) == [204, 204, 204]
    finally:
        server.shutdown()
        server.server_close()
    assert len(peers) == 3
    assert len(set(peers)) == 1, peers
