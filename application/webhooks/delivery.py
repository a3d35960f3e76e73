"""Sends queued deliveries: signed, at least once, in order per aggregate.

Each round claims the due head of every (subscription, aggregate) queue -- the
pending row with the lowest aggregate version -- with a lease, so a failing
aggregate holds its later events while other aggregates go on, and two
dispatchers never send the same delivery at once: the lease covers the whole round
(every claimed delivery waits its turn, `concurrency` at a time, each attempt at
most `timeout_s`), no attempt starts that could end after it, and an outcome is
recorded only while the row still carries this dispatcher's lease
(application/webhooks/outcomes.py). An attempt is a POST of the CloudEvent
(structured JSON) signed the Standard Webhooks way with the `standardwebhooks`
package; a 2xx answer delivers it, anything else (another status, a redirect, a
timeout, a dropped connection, a refused address) is logged as an attempt and
retried after an exponential backoff with jitter. A subscription whose every
attempt has failed for `disable_after_s` is disabled.

The HTTP client is aiohttp (httpx's request path cost ten times the CPU per
delivery, bench/webhooks.py); names are resolved through the SSRF guard's
resolver and every socket's address is checked by its socket factory. Outcomes
are recorded as attempts finish, a fixed number of SQL statements each time
whatever their number, and the dispatcher's loop also deletes what the retention
period let go and ticks its heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from standardwebhooks.webhooks import Webhook

from application import webhook_metrics as metrics
from application.heartbeats import Heartbeat
from application.webhooks import outbox_sql as sql
from application.webhooks.guard import (
    ConnectRefused,
    GuardedResolver,
    Network,
    TargetRefused,
    check_url,
    guarded_socket,
    parse_allow,
)
from application.webhooks.outcomes import AttemptOutcome, Claimed, columns, leases, record
from application.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
USER_AGENT = "dialtone-webhooks/1"
CALL_ENDED = "dialtone.call.ended.v1"
# The CDR's key fields a call-ended delivery carries in data.cdr.
CDR_FIELDS = ("call_id", "tenant", "direction", "caller", "callee", "final_callee", "trunk",
              "queue", "agents", "started_at", "queued_at", "answered_at", "ended_at",
              "wait_s", "talk_s", "hold_s", "hold_count", "disposition", "hangup_cause",
              "hangup_side", "sip_status", "recording_ref", "mos")
MAX_ERROR = 500
RECORD_MARGIN_S = 5.0  # of a lease, left for recording the round's last outcomes


def lease_s(settings: WebhookSettings) -> float:
    """How long a round holds the deliveries it claims: long enough for every one to
    wait its turn (`concurrency` at a time, each attempt at most timeout_s), then for
    one more attempt's worth and the recording margin. A dispatcher that dies leaves
    its claimed deliveries to the others once this is over."""
    waves = math.ceil(settings.batch / settings.concurrency)
    return (waves + 1) * settings.timeout_s + RECORD_MARGIN_S


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the key once per secret, not once per attempt


def sign(secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    signature = _signer(secret).sign(msg_id=msg_id, timestamp=at, data=body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature}


def client(settings: WebhookSettings, allow: Sequence[Network]) -> aiohttp.ClientSession:
    """The sender's HTTP client. Redirects are refused per request (allow_redirects=
    False), no proxy or netrc from the environment, no cookies, bodies read raw (no
    decompression: at most max_response_bytes of what came); the connector keeps up
    to `concurrency` connections open for reuse, and resolves names through the SSRF
    guard (checked answers are cached for 10 s). The whole attempt is bounded by the
    caller's asyncio.timeout. Every socket's address is checked before it connects
    (`guarded_socket`): literal hosts never reach the resolver."""
    connector = aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=0,
                                     resolver=GuardedResolver(allow), ttl_dns_cache=10,
                                     socket_factory=guarded_socket(allow))
    return aiohttp.ClientSession(connector=connector, trust_env=False,
                                 cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                 timeout=aiohttp.ClientTimeout(total=None),
                                 headers={"user-agent": USER_AGENT},
                                 skip_auto_headers=("accept-encoding",))  # read raw: no gzip


class Dispatcher:
    """One sender; several (in several processes) may share the queue."""

    def __init__(self, database_url: str, settings: WebhookSettings | None = None, *,
                 heartbeat: Heartbeat | None = None) -> None:
        self.database_url = database_url
        self.settings = settings or WebhookSettings()
        self.allow: tuple[Network, ...] = parse_allow(self.settings.allow_nets)
        self.heartbeat = heartbeat
        self._conn: AsyncConnection[Any] | None = None
        self._client: aiohttp.ClientSession | None = None
        self._pruned_at = -math.inf
        metrics.expose_webhooks()  # this process sends: it serves the webhook series

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(self.database_url, autocommit=True)
        return self._conn

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; database failures are logged and retried."""
        while not stop.is_set():
            try:
                sent = await self.run_once()
                await self._prune_when_due()
                if self.heartbeat is not None:
                    self.heartbeat.tick()  # a round went through: the beat may be written
                metrics.webhook_round_done()
            except Exception:
                log.exception("webhook dispatcher round failed; retrying")
                metrics.webhook_round_failed()
                await self.close()
                sent = 0
                await _wait(stop, 1.0)
            if not sent:
                await _wait(stop, self.settings.poll_s)

    async def run_once(self) -> int:
        """One round: claim what is due, send it, record each outcome as its attempt
        finishes; return how many attempts were made."""
        conn = await self._connection()
        lease = lease_s(self.settings)
        deadline = time.monotonic() + lease  # read before the claim: its lease ends later
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.CLAIM, {"limit": self.settings.batch, "lease": lease})
            claimed = [Claimed(**row) for row in await cur.fetchall()]
        metrics.webhook_round(len(claimed), self.settings.batch)  # the backlog, for free
        if not claimed:
            return 0
        ready = await self._with_cdrs(conn, claimed)
        if self._client is None:
            self._client = client(self.settings, self.allow)
        return await self._send(conn, self._client, ready, deadline)

    async def _send(self, conn: AsyncConnection[Any], http: aiohttp.ClientSession,
                    ready: Sequence[Claimed], deadline: float) -> int:
        """Attempt `ready`, `concurrency` at a time, recording outcomes as they come
        (those that finished while the last were recorded go together); a delivery
        whose turn comes too late to finish within the lease is released unsent."""
        gate = asyncio.Semaphore(self.settings.concurrency)
        refusals = {url: _refusal(url, self.allow) for url in {c.url for c in ready}}
        tasks = {asyncio.ensure_future(self._attempt(http, gate, c, refusals[c.url], deadline)): c
                 for c in ready}
        waiting, made, unsent = set(tasks), 0, []
        try:
            while waiting:
                finished, waiting = await asyncio.wait(waiting,
                                                       return_when=asyncio.FIRST_COMPLETED)
                outcomes = [o for t in finished if (o := t.result()) is not None]
                unsent += [tasks[t] for t in finished if t.result() is None]
                await record(conn, outcomes, self.settings)
                metrics.webhook_attempts((o.outcome, o.duration_ms / 1000) for o in outcomes)
                made += len(outcomes)
        finally:
            for task in waiting:  # recording failed: the leases of the rest run out
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        if unsent:
            await conn.execute(sql.RELEASE, leases(unsent))
        return made

    async def prune(self) -> int:
        """Delete delivered deliveries and attempt-log rows older than retention_s, in
        batches; return how many rows went. Pending deliveries always stay."""
        s, conn, removed = self.settings, await self._connection(), 0
        for statement in (sql.PRUNE_ATTEMPTS, sql.PRUNE_DELIVERED):
            for _ in range(s.prune_max_batches):
                cur = await conn.execute(statement, (s.retention_s, s.prune_batch))
                removed += max(cur.rowcount, 0)
                if cur.rowcount < s.prune_batch:
                    break
        return removed

    async def _prune_when_due(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= self.settings.prune_every_s:
            self._pruned_at = now
            if removed := await self.prune():
                log.info("webhook retention removed %d old rows", removed)

    async def _with_cdrs(self, conn: AsyncConnection[Any],
                         claimed: list[Claimed]) -> list[Claimed]:
        """The claimed deliveries ready to send. A call-ended delivery first gets the
        CDR's key fields (in data.cdr) once the CDR projection has folded that event;
        it waits (postponed) up to cdr_wait_s for them. One query and at most two
        updates per round, whatever the number of calls."""
        waiting = {c.id: payload for c in claimed if c.event_type == CALL_ENDED
                   if "cdr" not in (payload := json.loads(c.body)).get("data", {})}
        if not waiting:
            return claimed
        ended = [c for c in claimed if c.id in waiting]
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql.CDRS, ([c.aggregate_id for c in ended],))
            rows = {row["call_id"]: row for row in await cur.fetchall()}
        patient_since = datetime.now(UTC) - timedelta(seconds=self.settings.cdr_wait_s)
        postponed: list[int] = []
        filled: list[tuple[int, str]] = []
        for c in ended:
            row = rows.get(c.aggregate_id)
            if row is not None and row["last_version"] < c.aggregate_version:
                row = None  # the projection has not folded this call's end yet
            if row is None and c.created_at > patient_since:
                postponed.append(c.id)
                continue
            payload = waiting[c.id]
            cdr = None if row is None else {k: row.get(k) for k in CDR_FIELDS}
            payload = {**payload, "data": {**payload["data"], "cdr": cdr}}
            c.body = json.dumps(payload, separators=(",", ":"), default=_jsonable)
            filled.append((c.id, c.body))
        if postponed:
            await conn.execute(sql.POSTPONE, (0.2, postponed))
        if filled:
            await conn.execute(sql.SET_PAYLOADS, columns(filled, 2))
        later = set(postponed)
        return [c for c in claimed if c.id not in later]

    async def _attempt(self, http: aiohttp.ClientSession, gate: asyncio.Semaphore,
                       claimed: Claimed, refusal: str | None,
                       deadline: float) -> AttemptOutcome | None:
        """One attempt, once a place is free; None (not sent) when it could no longer
        end and be recorded before the lease does."""
        async with gate:
            if time.monotonic() + self.settings.timeout_s + RECORD_MARGIN_S > deadline:
                return None
            attempted_at = datetime.now(UTC)
            started = time.perf_counter()
            status: int | None = None
            outcome, error = (metrics.REFUSED, refusal) if refusal else (metrics.DELIVERED, None)
            try:
                if refusal is None:
                    async with asyncio.timeout(self.settings.timeout_s):
                        status = await self._post(http, claimed, attempted_at)
                    if not 200 <= status < 300:
                        outcome, error = metrics.HTTP_ERROR, f"HTTP {status}"
            except TimeoutError:
                outcome, error = metrics.TIMEOUT, f"timed out after {self.settings.timeout_s:g} s"
            except TargetRefused as exc:
                outcome, error = metrics.REFUSED, f"refused target: {exc}"
            except (aiohttp.ClientError, OSError) as exc:
                outcome, error = _failure(exc)
            duration_ms = (time.perf_counter() - started) * 1000
            return AttemptOutcome(claimed, attempted_at, status, error, duration_ms, outcome)

    async def _post(self, http: aiohttp.ClientSession, claimed: Claimed, at: datetime) -> int:
        body = claimed.body.encode()
        headers = {**sign(claimed.secret, str(claimed.event_id), body, at),
                   "content-type": CONTENT_TYPE}
        async with http.post(claimed.url, data=body, headers=headers,
                             allow_redirects=False) as response:
            await _read_capped(response, self.settings.max_response_bytes)
            return response.status


def _refusal(url: str, allow: Sequence[Network]) -> str | None:
    """Why the URL may not be used now (checked once per URL per round, for a plain
    reason in the log; the socket factory checks every connection again), or None."""
    try:
        check_url(url, allow)
    except TargetRefused as exc:
        return f"refused target: {exc}"
    return None


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> None:
    """Read at most `cap` bytes of the body; past that, close the connection (dropping
    the rest) rather than drain an answer that may never end."""
    read = 0
    while read < cap:
        chunk = await response.content.read(cap - read)
        if not chunk:
            return
        read += len(chunk)
    response.close()


def _failure(exc: BaseException) -> tuple[str, str]:
    """The outcome and the delivery log's error of a failed connection: a refusal
    when the guard's socket factory would not let it connect."""
    refused = getattr(exc, "os_error", exc)  # aiohttp.ClientConnectorError wraps it
    if isinstance(refused, ConnectRefused):
        return metrics.REFUSED, f"refused target: {refused.strerror}"[:MAX_ERROR]
    return metrics.CONNECTION_ERROR, _describe(exc)


def _describe(exc: BaseException) -> str:
    """The delivery log's error for a failure of the connection itself."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        text = "the receiver closed the connection without a complete answer"
    else:
        text = str(exc)
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)
