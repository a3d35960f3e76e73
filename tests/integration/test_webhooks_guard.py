"""The sender's SSRF guard at connect time, against a real receiver on 127.0.0.1.

A name (not a literal address) never reaches `check_url`'s literal check: the
sender's resolver must check what it resolves to, before any connection. A literal
never reaches the resolver: the connector's socket factory must check it, however
the URL spelt it (yarl makes `127。0。0。1` the literal 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.identity.model import Role
from application.webhooks.delivery import Dispatcher, client
from application.webhooks.guard import TargetRefused, parse_allow
from application.webhooks.settings import WebhookSettings
from dialtone.database import eventsourcing_env
from streams.webhooks import StoreFollower
from tests.integration.api_support import running_api
from tests.integration.webhook_support import FAST, ended_call, receiving, subscribe

# 127.0.0.1 as aiohttp (yarl) reads these: ideographic full stops, circled numbers.
DISGUISED = ("127\u30020\u30020\u30021", "\u246b\u2466.0.0.1")


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


def _port(url: str) -> str:
    return url.split(":")[2].split("/", maxsplit=1)[0]


def test_a_literal_address_however_spelt_is_refused_before_connecting() -> None:
    """The socket factory checks the address of every connection, literal hosts too:
    they never reach the resolver, and yarl turns a disguised spelling into one."""
    with receiving(new_secret()) as receiver:
        port = _port(receiver.url)
        for host in ("127.0.0.1", *DISGUISED):
            with pytest.raises(aiohttp.ClientConnectorError, match="non-global"):
                asyncio.run(_post(f"http://{host}:{port}/hooks/dialtone", ""))
        assert receiver.paths == []  # no request reached it
        assert asyncio.run(_post(receiver.url, "127.0.0.1/32")) == 401  # allowed: unsigned


@pytest.mark.migrated_database
def test_a_disguised_loopback_url_is_refused_at_creation_and_at_delivery(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's bypass: such a URL was accepted (201) and the dispatcher POSTed to
    127.0.0.1. Now the API answers 422, and a row that holds one anyway (made before
    this check) is refused at delivery and never reaches the receiver."""
    monkeypatch.delenv("DIALTONE_WEBHOOK_ALLOW_NETS", raising=False)
    secret = new_secret()
    with receiving(secret) as receiver, running_api(database_url, role=Role.INTEGRATOR) as api:
        port = _port(receiver.url)
        urls = [f"http://{host}:{port}/hooks/dialtone" for host in DISGUISED]
        for url in (*urls, "http://100.100.100.200/latest/meta-data/"):
            response = api.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
            assert response.status_code == 422, (url, response.text)
        hooks = [subscribe(database_url, url, secret) for url in urls]
        service = CallService(env=eventsourcing_env(database_url))
        try:
            ended_call(service, "disguised@test")
            StoreFollower(service, database_url).catch_up()
        finally:
            service.close()
        dispatcher = Dispatcher(database_url, WebhookSettings(allow_nets="", cdr_wait_s=0))

        async def two_rounds() -> list[int]:
            try:
                return [await dispatcher.run_once() for _ in range(2)]
            finally:
                await dispatcher.close()

        assert sum(asyncio.run(two_rounds())) >= 2
        assert receiver.paths == []
        with psycopg.connect(database_url) as conn:
            log = conn.execute("SELECT subscription_id, status_code, error FROM webhook_attempts"
                               " WHERE subscription_id = ANY(%s)", (hooks,)).fetchall()
        assert {row[0] for row in log} == set(hooks)
        assert all(status is None and "refused target" in error for _, status, error in log), log
