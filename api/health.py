"""Health of the platform as the database shows it: heartbeats and projection lag.

Three levels, for /healthz:
- ``failing`` (503): something the platform depends on is not doing its job: a
  service whose heartbeat went stale (crashed or hung) with no other instance
  to cover it, a required service with no running instance (the webhook
  follower and dispatcher are required while a tenant has an active
  subscription), or a stalled projection. (An unreachable database is the 503
  problem every route gives.)
- ``degraded`` (200): everything runs, but an operator should look: projections
  parked events, calls have waited longer than the stall threshold for an
  earlier event (their CDRs stop at the gap), or a replica's heartbeat is stale
  while another instance of its service runs (below).
- ``ok`` (200).

Replicas and singletons. A process that several interchangeable copies may run
(routing, worker, the webhooks' Kafka follower and dispatcher, the refresher)
names its heartbeat row after its host (``application.heartbeats.host_instance``).
On Kubernetes the host is the pod's name: a pod lost without SIGTERM (node lost,
deleted by force) is replaced by a pod of another name, and its row is left
stale. Such a row, when another instance of the same service is running, makes
health ``degraded``, not ``failing`` (the service does its job; the row is a
lost pod's or a hung replica's, which its group routes around), and after
``forget_after_s`` without a beat it is left out altogether; so is a replica's
cleanly stopped row after as long. A row named otherwise (the relay's
application name, a B2BUA worker's SIP address) is a singleton, which a restart
takes over: stale, it fails health however many siblings run. A stale replica
with no running sibling fails too, however old. Rows are only ignored, never
deleted here: a replica that was merely slow beats again on its row and is
listed again.

A projection is *stalled* when it is behind its event store and has stayed at
the same position for longer than ``stall_after_s``, both by its own
``updated_at`` and as observed by this API process (``StallWatch``): the first
alone would call a projection that idled for an hour stalled in the
milliseconds between a new event and its projection. The observation lives in
this process, so after an API restart a stall is reported at the earliest
``stall_after_s`` later.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from api.queries import health as queries
from api.schemas.health import (
    HealthPublic,
    ProjectionLagPublic,
    ServiceHealthPublic,
    SourceLagPublic,
)
from application.heartbeats import named_after_host
from projections import call_events, callcentre, calls

STORE_PREFIX = "store:"  # in-process sources: store:<application name>
KAFKA_PREFIX = "kafka:"  # a Faust batch that spanned partitions: kafka:<t>:<p>,<t>:<p>


@dataclass(frozen=True)
class EventStore:
    """An application's event store, and the Kafka topics its relay publishes to."""

    application: str  # eventsourcing's application name, e.g. "CallService"
    topics: tuple[str, ...] = ()  # topic names without the deployment's prefix

    @property
    def table(self) -> str:
        return events_table(self.application)


def events_table(application: str) -> str:
    """eventsourcing's PostgreSQL recorder names the table <name lowercased>_events."""
    return f"{application.lower()}_events"


@dataclass(frozen=True)
class HealthConfig:
    event_stores: tuple[EventStore, ...] = ()
    # Services that must have a running instance (e.g. "relay" and "worker" with Kafka).
    required_services: tuple[str, ...] = ()
    # Required too while a tenant has an active webhook subscription: what delivers
    # them (without Kafka, `dialtone up` runs both; with it, `dialtone webhooks`).
    webhook_services: tuple[str, ...] = ("webhooks", "webhook-dispatcher")
    stale_after_beats: float = 3.0  # a heartbeat older than this many of its intervals is stale
    # A replica's stale row covered by a running sibling, or its stopped row, is left out
    # once its last beat is older than this (see the module docstring).
    forget_after_s: float = 3600.0
    stall_after_s: float = 30.0
    # Projection groups (their table names; names[0] names the group in dead letters).
    groups: tuple[tuple[str, ...], ...] = (calls.NAMES, callcentre.GROUP.names)
    # Tables this API reads: /readyz answers 503 until the migrations created them.
    ready_tables: tuple[str, ...] = (
        "projection_positions", "service_heartbeats", "call_events", "cdr", "call_live",
    )


@dataclass
class StallWatch:
    """Since when each (projection, application) has been seen behind at one position."""

    _since: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    def behind_for(self, key: tuple[str, str], position: int, behind: int) -> float:
        """Seconds this process has seen `key` behind without moving (0 if not behind)."""
        if behind <= 0:
            self._since.pop(key, None)
            return 0.0
        now = time.monotonic()
        seen = self._since.get(key)
        if seen is None or seen[0] != position:
            self._since[key] = (position, now)
            return 0.0
        return now - seen[1]


def application_of(source: str, stores: Iterable[EventStore]) -> str | None:
    """The application whose events a projection_positions source carries."""
    if source.startswith(STORE_PREFIX):
        return source.removeprefix(STORE_PREFIX)
    topics = {part.rsplit(":", 1)[0] for part in source.removeprefix(KAFKA_PREFIX).split(",")}
    for store in stores:
        if any(t.endswith(own) for t in topics for own in store.topics):
            return store.application
    return None


async def projection_lag(conn: asyncpg.Connection, config: HealthConfig,
                         watch: StallWatch) -> list[ProjectionLagPublic]:
    rows = await queries.positions(conn)
    apps = {row["source"]: application_of(row["source"], config.event_stores) for row in rows}
    tables = {events_table(a) for a in apps.values() if a} | {
        s.table for s in config.event_stores}
    heads = await queries.store_heads(conn, tables)
    parked = await queries.parked(conn)
    group_of = {name: names[0] for names in config.groups for name in names}
    by_projection: dict[tuple[str, str | None], list[SourceLagPublic]] = defaultdict(list)
    for row in rows:
        app = apps[row["source"]]
        head = heads.get(events_table(app)) if app else None
        exact = head is not None and row["source"].startswith(STORE_PREFIX)
        by_projection[(row["projection"], app)].append(SourceLagPublic(
            source=row["source"], position=row["position"], store_head=head,
            events_behind=max(0, head - row["position"]) if exact and head is not None else None,
            advanced_at=row["updated_at"], seconds_since_advance=row["seconds_since_advance"],
            parked=None if parked is None else parked.get(
                (group_of.get(row["projection"], row["projection"]), row["source"]), 0)))
    lag = [_summary(projection, app, sources, heads, config, watch)
           for (projection, app), sources in by_projection.items()]
    waiting = await queries.waiting_calls(conn)
    if waiting is None:
        return lag
    return [p.model_copy(update={"waiting_calls": waiting[0], "oldest_waiting_s": waiting[1]})
            if p.projection == call_events.NAME else p for p in lag]


def _summary(projection: str, app: str | None, sources: Sequence[SourceLagPublic],
             heads: Mapping[str, int], config: HealthConfig,
             watch: StallWatch) -> ProjectionLagPublic:
    position = max(s.position for s in sources)
    latest = max(sources, key=lambda s: s.advanced_at)
    head = heads.get(events_table(app)) if app else None
    behind = max(0, head - position) if head is not None else None
    stalled = False
    if app is not None and behind:
        seen_for = watch.behind_for((projection, app), position, behind)
        stalled = min(seen_for, latest.seconds_since_advance) > config.stall_after_s
    elif app is not None:
        watch.behind_for((projection, app), position, 0)
    counts = [s.parked for s in sources if s.parked is not None]
    return ProjectionLagPublic(
        projection=projection, application=app, position=position, store_head=head,
        events_behind=behind, advanced_at=latest.advanced_at,
        seconds_since_advance=latest.seconds_since_advance, stalled=stalled,
        parked=sum(counts) if len(counts) == len(sources) else None, sources=list(sources))


def stale_after_s(interval_s: float, config: HealthConfig) -> float:
    """The age past which a heartbeat written every `interval_s` is stale."""
    return config.stale_after_beats * interval_s


def is_replica(service: ServiceHealthPublic) -> bool:
    """One of interchangeable copies, its row named after its host (module docstring)."""
    return named_after_host(service.instance, service.host)


def services(rows: Iterable[asyncpg.Record | Mapping[str, Any]], config: HealthConfig,
             ) -> list[ServiceHealthPublic]:
    """Each heartbeat row health considers: all but the forgotten replicas'."""
    listed = [_service(row, config) for row in rows]
    running = {s.service for s in listed if s.status == "running"}
    return [s for s in listed if not _forgotten(s, running, config)]


def _service(row: asyncpg.Record | Mapping[str, Any], config: HealthConfig) -> ServiceHealthPublic:
    status: Literal["running", "stopped", "stale"]
    if row["stopped_at"] is not None:
        status = "stopped"
    elif row["seconds_since_beat"] > stale_after_s(row["interval_s"], config):
        status = "stale"
    else:
        status = "running"
    detail: Any = row["detail"]
    return ServiceHealthPublic(
        service=row["service"], instance=row["instance"], status=status, pid=row["pid"],
        host=row["host"], started_at=row["started_at"], beat_at=row["beat_at"],
        stopped_at=row["stopped_at"], interval_s=row["interval_s"],
        seconds_since_beat=row["seconds_since_beat"],
        detail=detail if isinstance(detail, dict) else {})


def _forgotten(service: ServiceHealthPublic, running: set[str], config: HealthConfig) -> bool:
    """A replica's row silent for longer than forget_after_s: stopped, or stale while
    another instance of its service runs. Never a running row, a singleton's, or the
    stale row of a service with nothing running (that is a failure however old)."""
    if not is_replica(service) or service.seconds_since_beat <= config.forget_after_s:
        return False
    return service.status == "stopped" or (
        service.status == "stale" and service.service in running)


async def assess(conn: asyncpg.Connection, config: HealthConfig, watch: StallWatch,
                 ) -> HealthPublic:
    listed = services(await queries.heartbeats(conn), config)
    return judge(listed, await projection_lag(conn, config, watch), config,
                 webhooks_active=await queries.webhooks_active(conn))


def required(config: HealthConfig, *, webhooks_active: bool) -> tuple[str, ...]:
    """The services that must be running now: the configured ones, and the webhook
    delivery's while a subscription waits for deliveries."""
    return config.required_services + (config.webhook_services if webhooks_active else ())


def judge(listed: Sequence[ServiceHealthPublic], lag: Sequence[ProjectionLagPublic],
          config: HealthConfig, *, webhooks_active: bool = False) -> HealthPublic:
    """The report on what `services` and `projection_lag` found (module docstring)."""
    running = {s.service for s in listed if s.status == "running"}
    missing = [name for name in required(config, webhooks_active=webhooks_active)
               if name not in running]
    stale = [s for s in listed if s.status == "stale"]
    # A stale replica with a running sibling: the service does its job (degraded).
    covered = [s for s in stale if is_replica(s) and s.service in running]
    uncovered = [s for s in stale if not (is_replica(s) and s.service in running)]
    problems = [f"service {s.service} {s.instance} is stale: no heartbeat for "
                f"{s.seconds_since_beat:.0f} s" for s in uncovered]
    problems += [f"no running {name}" for name in missing]
    problems += [f"projection {p.projection} is stalled {p.events_behind} events behind "
                 f"{p.application} for {p.seconds_since_advance:.0f} s" for p in lag if p.stalled]
    warnings = [f"replica {s.service} {s.instance} is stale: no heartbeat for "
                f"{s.seconds_since_beat:.0f} s while another {s.service} runs (a lost pod or "
                f"a hung replica; forgotten after {config.forget_after_s:.0f} s)"
                for s in covered]
    # A group's parked events show on each of its projections: count them once.
    members = {name for names in config.groups for name in names[1:]}
    parked = sum(p.parked or 0 for p in lag if p.projection not in members)
    if parked:
        warnings.append(f"{parked} events parked by projections (GET /v1/projections)")
    warnings += [f"{p.waiting_calls} calls wait in {p.projection} for an earlier event, the "
                 f"oldest for {p.oldest_waiting_s:.0f} s: their CDRs stop there until it comes "
                 "(a parked event, or one not delivered; GET /v1/projections)"
                 for p in lag if p.waiting_calls and p.oldest_waiting_s is not None
                 and p.oldest_waiting_s > config.stall_after_s]
    status: Literal["ok", "degraded", "failing"] = (
        "failing" if problems else "degraded" if warnings else "ok")
    return HealthPublic(status=status, problems=problems + warnings, services=list(listed),
                        missing_services=missing, projections=list(lag))
