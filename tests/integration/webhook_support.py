"""A real HTTP receiver on 127.0.0.1 for the webhook tests, and the runners' wiring.

The receiver verifies every request's Standard Webhooks signature with the
subscription's secret and misbehaves on cue: each request takes the next mode of
its script ("500", "timeout": answer after the sender gave up, "slow": accept after
`hold_s`, within the sender's timeout, "drop": close the connection without an
answer, "redirect": 302 elsewhere, "endless": 200 with a body that never ends),
then answers 204 ("ok") once the script is spent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import psycopg
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from application.calls import CallService
from application.webhooks.settings import WebhookSettings
from domain.call import Direction, Disposition, HangupSide
from streams.relay import Relay, RelayConfig

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
# Short timeouts and backoffs so that a handful of failures take a second or so.
FAST = WebhookSettings(allow_nets="127.0.0.1/32", timeout_s=1.0, backoff_base_s=0.05,
                       backoff_max_s=0.3, cdr_wait_s=30.0, poll_s=0.05)


@dataclass
class Receiver:
    secret: str
    script: list[str] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # answered 2xx, in order
    modes: list[str] = field(default_factory=list)  # the mode of every request, in order
    paths: list[str] = field(default_factory=list)  # the path of every request
    bad_signatures: int = 0
    hold_s: float = 2.0  # how long a "timeout" or "slow" request waits before answering
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_mode(self) -> str:
        with self.lock:
            mode = self.script.pop(0) if self.script else "ok"
            self.modes.append(mode)
            return mode

    def ids(self) -> list[str]:
        with self.lock:
            return [e["id"] for e in self.accepted]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    webhook = Webhook(receiver.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            with receiver.lock:
                receiver.paths.append(self.path)
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = webhook.verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                with receiver.lock:
                    receiver.bad_signatures += 1
                self._answer(401)
                return
            mode = receiver.next_mode()
            if mode == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode == "timeout":
                time.sleep(receiver.hold_s)
                self._answer(204)  # too late: the sender has given up
                return
            if mode == "500":
                self._answer(500)
                return
            if mode == "slow":
                time.sleep(receiver.hold_s)
            if mode == "endless":
                self._endless()
                return
            if mode == "redirect":
                self.send_response(302)
                self.send_header("location", "/redirected")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            with receiver.lock:
                receiver.accepted.append({**event, "_webhook_id": self.headers["webhook-id"]})
            self._answer(204)

        def _endless(self) -> None:
            """200, then chunks until the sender hangs up (a receiver gone wrong)."""
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                self.close_connection = True

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender closed first (it timed out)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def receiving(secret: str, script: list[str] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(secret, list(script or []))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/dialtone"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def subscribe(database_url: str, url: str, secret: str) -> UUID:
    """A subscription of tenant default to every event type, straight into its table
    (as the API's create stores it), for tests that run no API."""
    subscription = uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO webhook_subscriptions (id, tenant, url, event_types, secret)"
                     " VALUES (%s, 'default', %s, '{*}', %s)", (subscription, url, secret))
    return subscription


def wait_for(check: Callable[[], bool], seconds: float = 60.0, what: str = "condition") -> None:
    """Poll every 50 ms, up to `seconds` (a bound, not a speed claim)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds} s")
        time.sleep(0.05)


def ended_call(service: CallService, sip_call_id: str, *, recording: bool = False) -> UUID:
    """A call answered then ended (4 events), plus its recording (a 5th) if asked."""
    call_id = service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                    trunk="pstn", sip_call_id=sip_call_id, occurred_at=T0)
    service.ring_call(call_id, T0 + timedelta(seconds=1))
    service.answer_call(call_id, T0 + timedelta(seconds=5))
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal",
                     hangup_side=HangupSide.CALLER, sip_status=200,
                     occurred_at=T0 + timedelta(seconds=65))
    if recording:
        service.attach_recording(call_id, f"rec/{call_id}.wav", 60.0, T0 + timedelta(seconds=70))
    return call_id


def by_subject(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each aggregate's `aggregateversion`s in arrival order."""
    found: dict[str, list[int]] = {}
    for event in events:
        found.setdefault(event["subject"], []).append(event["aggregateversion"])
    return found


def relay_all(service: CallService, database_url: str, bootstrap: str, prefix: str) -> None:
    """Publish everything ``service`` stored to the calls topic of ``prefix`` (a relay
    opened, run until it has nothing left, closed)."""
    relay = Relay(service, database_url, RelayConfig(bootstrap=bootstrap, topic_prefix=prefix,
                                                     partitions=2))
    try:
        relay.open()
        while relay.relay_page():
            pass
    finally:
        relay.close()
