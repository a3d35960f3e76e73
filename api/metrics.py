"""The API process's Prometheus metrics: what only the API measures (GET /metrics is
api/routes/metrics.py).

- ``HttpMetrics``, an ASGI middleware, counts every request by method, route
  *template* (``/v1/calls/{call_id}``, never the concrete path, so the label
  stays bounded) and status, and times it until its response starts.
- Before each exposition, the route reads what the database says and sets the
  platform-wide series only the API computes: ``dialtone_database_up`` (can
  this API reach its database), projection lag per projection (the same figures
  as GET /v1/projections), each queue's service-level tallies (queue_live, by
  tenant and queue key: two tenants may both have a queue ``sales``), and
  the heartbeat rows /healthz judges (each live row's age and the age at which
  it goes stale, and the services /healthz requires), so a hung loop, which
  still answers its scrapes, raises an alert. Every API replica reports the
  same platform-wide values, so alert rules take their ``max`` by projection,
  (tenant, queue) or service.

The series themselves are defined in ``application.metrics`` (the catalogue);
the platform snapshot is a collector of its own that yields nothing until this
process answered a scrape, so processes without an API never export it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from api.db import UNREACHABLE
from api.health import (
    HealthConfig,
    StallWatch,
    projection_lag,
    required,
    services,
    stale_after_s,
)
from api.middleware import HttpMiddleware
from api.queries import health as health_queries
from application.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "<unmatched>"  # a path no route serves (404): one label value for all
SNAPSHOT_TIMEOUT_S = 5.0  # a scrape waits this long for the database, then reports it down

_QUEUES = """
SELECT tenant, key, offered, answered, answered_within_sl, abandoned, abandoned_within_sl,
       short_abandoned
FROM queue_live ORDER BY tenant, key
"""


class HttpMetrics(HttpMiddleware):
    """Counts and times every HTTP request by method, route template and status."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding
        timed = False

        async def observe(message: Message) -> None:
            nonlocal status, timed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                timed = True
                _record(scope, status, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            if not timed:
                _record(scope, status, time.perf_counter() - started)


def _record(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    template = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") \
        else UNMATCHED_ROUTE
    method = str(scope.get("method", ""))
    HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(method=method, route=template).observe(seconds)


@dataclass(frozen=True)
class QueueGauges:
    tenant: str
    key: str
    offered: int
    answered: int
    answered_within_sl: int
    abandoned: int
    abandoned_within_sl: int
    short_abandoned: int


@dataclass(frozen=True)
class LagFigure:
    projection: str
    application: str
    events_behind: int
    seconds: float
    position: int
    parked: int
    waiting_calls: int | None = None  # call_events only (call_projection_gaps)


@dataclass(frozen=True)
class HeartbeatFigure:
    """A heartbeat row /healthz lists and that has not stopped (running or stale)."""

    service: str
    instance: str
    age_s: float  # seconds since its last beat
    stale_after_s: float  # the age at which /healthz calls it stale


@dataclass(eq=False)  # the registry keys collectors by identity
class PlatformSnapshot(Collector):
    """What the database said at the last scrape this API answered."""

    scraped: bool = False
    database_up: bool = False
    lag: list[LagFigure] = field(default_factory=list)
    queues: list[QueueGauges] = field(default_factory=list)
    heartbeats: list[HeartbeatFigure] = field(default_factory=list)
    required: tuple[str, ...] = ()  # only while the heartbeats were read

    def collect(self) -> Iterator[Metric]:
        if not self.scraped:
            return
        yield GaugeMetricFamily("dialtone_database_up", "1 when this API process reached "
                                "its database at this scrape, 0 otherwise.",
                                value=1 if self.database_up else 0)
        yield from _lag_families(self.lag)
        yield from _queue_families(self.queues)
        yield from _heartbeat_families(self.heartbeats, self.required)


def _lag_families(lag: Iterable[LagFigure]) -> Iterator[Metric]:
    labels = ["projection", "application"]
    events = GaugeMetricFamily("dialtone_projection_lag_events", "Events of its store a "
                               "projection has not applied yet (store head - position).",
                               labels=labels)
    seconds = GaugeMetricFamily("dialtone_projection_lag_seconds", "While a projection is "
                                "behind: seconds since it last advanced (0 when caught up).",
                                labels=labels)
    position = GaugeMetricFamily("dialtone_projection_position", "Store position a "
                                 "projection has applied up to.", labels=labels)
    parked = GaugeMetricFamily("dialtone_projection_parked_events", "Events a projection "
                               "could not apply and parked in projection_dead_letters "
                               "(it went on past them).", labels=labels)
    waiting = GaugeMetricFamily("dialtone_projection_waiting_calls", "Calls whose later "
                                "events wait for an earlier one not yet applied (call_events "
                                "only): their CDRs stop at the gap.", labels=labels)
    for figure in lag:
        values = [figure.projection, figure.application]
        events.add_metric(values, figure.events_behind)
        seconds.add_metric(values, figure.seconds)
        position.add_metric(values, figure.position)
        parked.add_metric(values, figure.parked)
        if figure.waiting_calls is not None:
            waiting.add_metric(values, figure.waiting_calls)
    yield from (events, seconds, position, parked, waiting)


# Each family's name after dialtone_queue_calls_ is its QueueGauges field.
_QUEUE_HELP = {
    "offered": "Calls that entered the queue (queue_live).",
    "answered": "Queued calls an agent answered.",
    "answered_within_sl": "Queued calls answered with a wait of at most the queue's "
                          "service-level threshold T (service_level_s).",
    "abandoned": "Queued calls whose caller hung up before an answer.",
    "abandoned_within_sl": "Abandoned with a wait of at most the service-level threshold "
                           "T (short abandons or not).",
    "short_abandoned": "Abandoned sooner than the queue's short-abandon threshold "
                       "(short_abandon_s): the service level leaves them out.",
}


def _queue_families(queues: Iterable[QueueGauges]) -> Iterator[Metric]:
    # By tenant too: two tenants may each have a queue of the same key.
    families = {name: CounterMetricFamily(f"dialtone_queue_calls_{name}", text,
                                          labels=["tenant", "queue"])
                for name, text in _QUEUE_HELP.items()}
    for queue in queues:
        for name, family in families.items():
            family.add_metric([queue.tenant, queue.key], getattr(queue, name))
    yield from families.values()


def _heartbeat_families(heartbeats: Iterable[HeartbeatFigure],
                        required: Iterable[str]) -> Iterator[Metric]:
    # Not `instance`: Prometheus' own target label (the API replica) would rename it.
    labels = ["service", "heartbeat_instance"]
    age = GaugeMetricFamily("dialtone_heartbeat_age_seconds", "Seconds since a process's "
                            "last heartbeat (service_heartbeats; rows stopped cleanly, or "
                            "forgotten by /healthz, left out).", labels=labels)
    stale = GaugeMetricFamily("dialtone_heartbeat_stale_after_seconds", "The heartbeat age "
                              "past which /healthz calls that process stale (its interval "
                              "times DIALTONE_HEARTBEAT_STALE_AFTER).", labels=labels)
    wanted = GaugeMetricFamily("dialtone_service_required", "1 for each service /healthz "
                               "requires a running instance of.", labels=["service"])
    for beat in heartbeats:
        age.add_metric([beat.service, beat.instance], beat.age_s)
        stale.add_metric([beat.service, beat.instance], beat.stale_after_s)
    for service in required:
        wanted.add_metric([service], 1)
    yield from (age, stale, wanted)


SNAPSHOT = PlatformSnapshot()
REGISTRY.register(SNAPSHOT)


async def _read_platform(pool: asyncpg.Pool, config: HealthConfig, watch: StallWatch) -> None:
    conn = await pool.acquire(timeout=SNAPSHOT_TIMEOUT_S)
    try:
        lag = await projection_lag(conn, config, watch)
        rows = await conn.fetch(_QUEUES) if await conn.fetchval(
            "SELECT to_regclass('queue_live') IS NOT NULL") else []
        beats = services(await health_queries.heartbeats(conn), config)
        webhooks_active = await health_queries.webhooks_active(conn)
    finally:
        await pool.release(conn)
    SNAPSHOT.heartbeats = [HeartbeatFigure(s.service, s.instance, s.seconds_since_beat,
                                           stale_after_s(s.interval_s, config))
                           for s in beats if s.status != "stopped"]
    SNAPSHOT.required = required(config, webhooks_active=webhooks_active)
    SNAPSHOT.lag = [LagFigure(p.projection, p.application, p.events_behind or 0,
                              p.seconds_since_advance if p.events_behind else 0.0, p.position,
                              p.parked or 0, p.waiting_calls)
                    for p in lag if p.application is not None]
    SNAPSHOT.queues = [QueueGauges(**dict(r)) for r in rows]


async def refresh_snapshot(pool: asyncpg.Pool, config: HealthConfig, watch: StallWatch) -> None:
    """Read the platform-wide series; with the database away, report it down and
    drop the figures that came from it (stale lag must not look current; nor must the
    required services, which without their heartbeats would look unserved: the
    database's own alert says it)."""
    try:
        await asyncio.wait_for(_read_platform(pool, config, watch), SNAPSHOT_TIMEOUT_S)
        SNAPSHOT.database_up = True
    except (*UNREACHABLE, asyncpg.PostgresError) as error:
        log.warning("metrics: database unavailable (%s)", type(error).__name__)
        SNAPSHOT.database_up, SNAPSHOT.lag, SNAPSHOT.queues = False, [], []
        SNAPSHOT.heartbeats, SNAPSHOT.required = [], ()
    SNAPSHOT.scraped = True
