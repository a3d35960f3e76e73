"""Sends queued deliveries: signed, at least once, in order per aggregate.

Each round claims the due head of every (subscription, aggregate) queue -- the
pending row with the lowest aggregate version -- with a lease, so a failing
aggregate holds its later events while other aggregates go on, and two
dispatchers never send the same aggregate at once. An attempt is a POST of the
CloudEvent (structured JSON) signed the Standard Webhooks way with the
`standardwebhooks` package; a 2xx answer delivers it, anything else (another
status, a redirect, a timeout, a dropped connection, a refused address) is logged
as an attempt and retried after an exponential backoff with jitter. A
subscription whose every attempt has failed for `disable_after_s` is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from standardwebhooks.webhooks import Webhook

from application.webhooks.guard import Network, Target, TargetRefused, parse_allow, resolve
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

_CLAIM = """
WITH heads AS (
    SELECT DISTINCT ON (subscription_id, aggregate_id)
           id, subscription_id, next_attempt_at, claimed_until
    FROM webhook_deliveries WHERE state = 'pending'
    ORDER BY subscription_id, aggregate_id, aggregate_version
), due AS (
    SELECT h.id FROM heads h JOIN webhook_subscriptions s ON s.id = h.subscription_id
    WHERE s.status = 'active' AND h.next_attempt_at <= now()
      AND (h.claimed_until IS NULL OR h.claimed_until < now())
    ORDER BY h.next_attempt_at LIMIT %(limit)s
)
UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => %(lease)s)
FROM due WHERE d.id = due.id AND (d.claimed_until IS NULL OR d.claimed_until < now())
RETURNING d.id, d.subscription_id, d.event_id, d.event_type, d.aggregate_id,
          d.aggregate_version, d.position, d.payload, d.attempts, d.created_at
"""
_TARGETS = "SELECT id, url, secret FROM webhook_subscriptions WHERE id = ANY(%s)"
_LOG = """
INSERT INTO webhook_attempts (delivery_id, subscription_id, attempt, attempted_at, status_code,
                              error, duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
_DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now(), claimed_until = NULL,
       attempts = attempts + 1 WHERE id = %s
"""
_RETRY = """
UPDATE webhook_deliveries SET attempts = attempts + 1, claimed_until = NULL,
       next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s
"""
_SUCCEEDED = """
UPDATE webhook_subscriptions SET failing_since = NULL,
       delivered_position = GREATEST(delivered_position, %s) WHERE id = %s
"""
_FAILED = """
UPDATE webhook_subscriptions SET failing_since = COALESCE(failing_since, %s) WHERE id = %s
"""
_DISABLE = """
UPDATE webhook_subscriptions
SET status = 'disabled', updated_at = now(),
    disabled_reason = 'every attempt failed since ' || failing_since::text
WHERE id = ANY(%s) AND status = 'active'
  AND failing_since < now() - make_interval(secs => %s)
RETURNING id
"""
_POSTPONE = """
UPDATE webhook_deliveries SET claimed_until = NULL,
       next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s
"""
_CDR = "SELECT * FROM cdr WHERE call_id = %s AND last_version >= %s LIMIT 1"
_SET_PAYLOAD = "UPDATE webhook_deliveries SET payload = %s WHERE id = %s"


@dataclass
class Claimed:
    id: int
    subscription_id: UUID
    event_id: UUID
    event_type: str
    aggregate_id: UUID
    aggregate_version: int
    position: int
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """The wait after failed attempt number `attempt` (1, 2, ...): base * 2^(attempt-1),
    capped, with "full jitter" in its upper half so that many failing deliveries do
    not all come back at the same instant."""
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 62))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def sign(secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature}


def client(settings: WebhookSettings) -> httpx.AsyncClient:
    """No redirects (a 3xx is a failed attempt), no proxies from the environment, and
    the timeout on every phase (the whole attempt is bounded again by the caller)."""
    limits = httpx.Limits(max_connections=settings.concurrency,
                          max_keepalive_connections=settings.concurrency)
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=limits,
                             timeout=httpx.Timeout(settings.timeout_s))


class Dispatcher:
    """One sender; several (in several processes) may share the queue."""

    def __init__(self, database_url: str, settings: WebhookSettings | None = None) -> None:
        self.database_url = database_url
        self.settings = settings or WebhookSettings()
        self.allow: tuple[Network, ...] = parse_allow(self.settings.allow_nets)
        self._conn: AsyncConnection[Any] | None = None
        self._client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
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
            except Exception:
                log.exception("webhook dispatcher round failed; retrying")
                await self.close()
                sent = 0
                await _wait(stop, 1.0)
            if not sent:
                await _wait(stop, self.settings.poll_s)

    async def run_once(self) -> int:
        """One round: claim what is due, send it, record the outcomes; return how many
        attempts were made."""
        conn = await self._connection()
        lease = self.settings.timeout_s * 2 + 5
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_CLAIM, {"limit": self.settings.batch, "lease": lease})
            claimed = [Claimed(**row) for row in await cur.fetchall()]
            if not claimed:
                return 0
            await cur.execute(_TARGETS, (list({c.subscription_id for c in claimed}),))
            targets = {row["id"]: (row["url"], row["secret"]) for row in await cur.fetchall()}
        ready = [c for c in claimed if await self._ready(conn, c)]
        if self._client is None:
            self._client = client(self.settings)
        http, gate = self._client, asyncio.Semaphore(self.settings.concurrency)
        resolver = RoundResolver(self.allow)
        outcomes = await asyncio.gather(*(self._attempt(http, gate, resolver, c,
                                                        *targets[c.subscription_id])
                                          for c in ready if c.subscription_id in targets))
        await self._record(conn, outcomes)
        return len(outcomes)

    async def _ready(self, conn: AsyncConnection[Any], claimed: Claimed) -> bool:
        """A call-ended delivery first gets the CDR's key fields (in data.cdr) once the
        CDR projection has folded that event; it waits up to cdr_wait_s for them."""
        if claimed.event_type != CALL_ENDED or "cdr" in claimed.payload.get("data", {}):
            return True
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_CDR, (claimed.aggregate_id, claimed.aggregate_version))
            row = await cur.fetchone()
        if row is None and claimed.created_at > datetime.now(UTC) - timedelta(
                seconds=self.settings.cdr_wait_s):
            await conn.execute(_POSTPONE, (0.2, claimed.id))
            return False
        cdr = None if row is None else json.loads(json.dumps(
            {k: row.get(k) for k in CDR_FIELDS}, default=_jsonable))
        claimed.payload = {**claimed.payload, "data": {**claimed.payload["data"], "cdr": cdr}}
        await conn.execute(_SET_PAYLOAD, (Jsonb(claimed.payload), claimed.id))
        return True

    async def _attempt(self, http: httpx.AsyncClient, gate: asyncio.Semaphore,
                       resolver: RoundResolver, claimed: Claimed, url: str,
                       secret: str) -> Outcome:
        async with gate:
            attempted_at = datetime.now(UTC)
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    status = await self._post(http, await resolver(url), claimed, secret,
                                             attempted_at)
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except TimeoutError:
                error = f"timed out after {self.settings.timeout_s:g} s"
            except TargetRefused as exc:
                error = f"refused target: {exc}"
            except (httpx.HTTPError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            duration_ms = (time.perf_counter() - started) * 1000
            return Outcome(claimed, attempted_at, status, error, duration_ms)

    async def _post(self, http: httpx.AsyncClient, target: Target, claimed: Claimed,
                    secret: str, at: datetime) -> int:
        body = json.dumps(claimed.payload, separators=(",", ":")).encode()
        headers = {**sign(secret, str(claimed.event_id), body, at),
                   "content-type": CONTENT_TYPE, "user-agent": USER_AGENT,
                   "host": target.host_header}
        async with http.stream("POST", target.url, content=body, headers=headers,
                                       extensions={"sni_hostname": target.sni_hostname}
                                       ) as response:
            await _read_capped(response, self.settings.max_response_bytes)
            return response.status_code

    async def _record(self, conn: AsyncConnection[Any], outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        s = self.settings
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(_LOG, [
                (o.claimed.id, o.claimed.subscription_id, o.claimed.attempts + 1, o.attempted_at,
                 o.status_code, o.error, o.duration_ms) for o in outcomes])
            done = [o for o in outcomes if o.ok]
            failed = [o for o in outcomes if not o.ok]
            await cur.executemany(_DELIVERED, [(o.claimed.id,) for o in done])
            await cur.executemany(_RETRY, [
                (backoff_s(o.claimed.attempts + 1, s.backoff_base_s, s.backoff_max_s),
                 o.claimed.id) for o in failed])
            await cur.executemany(_SUCCEEDED, _best_positions(done))
            failing = {o.claimed.subscription_id: o.attempted_at for o in failed}
            failing = {k: v for k, v in failing.items()
                       if k not in {o.claimed.subscription_id for o in done}}
            await cur.executemany(_FAILED, [(at, sid) for sid, at in failing.items()])
            if failing:
                await cur.execute(_DISABLE, (list(failing), s.disable_after_s))
                for (disabled,) in await cur.fetchall():
                    log.warning("webhook subscription %s disabled: every attempt failed for "
                                "%g s", disabled, s.disable_after_s)


class RoundResolver:
    """Resolves and checks each URL once per round, however many deliveries go to it
    (a resolution is a thread hop for getaddrinfo: per delivery, it was CPU we saw)."""

    def __init__(self, allow: Sequence[Network]) -> None:
        self.allow = allow
        self._found: dict[str, asyncio.Task[Target]] = {}

    async def __call__(self, url: str) -> Target:
        if url not in self._found:
            self._found[url] = asyncio.ensure_future(resolve(url, self.allow))
        return await self._found[url]


def _best_positions(done: Sequence[Outcome]) -> list[tuple[int, UUID]]:
    best: dict[UUID, int] = {}
    for o in done:
        best[o.claimed.subscription_id] = max(best.get(o.claimed.subscription_id, 0),
                                              o.claimed.position)
    return [(position, sid) for sid, position in best.items()]


async def _read_capped(response: httpx.Response, cap: int) -> None:
    """Read at most `cap` bytes of the body, then stop (closing drops the rest)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= cap:
            break


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)
