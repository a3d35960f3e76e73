"""Health of the platform as the database shows it: heartbeats and projection lag.

Three levels, for /healthz:
- ``failing`` (503): something the platform depends on is not doing its job: a
  service whose heartbeat went stale (crashed or hung), a required service with
  no running instance, or a stalled projection. (An unreachable database is
  the 503 problem every route gives.)
- ``degraded`` (200): everything runs, but projections have parked events an
  operator should look at.
- ``ok`` (200).

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
from projections import callcentre, calls

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
    stale_after_beats: float = 3.0  # a heartbeat older than this many of its intervals is stale
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
    return [_summary(projection, app, sources, heads, config, watch)
            for (projection, app), sources in by_projection.items()]


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


def services(rows: Iterable[asyncpg.Record], config: HealthConfig) -> list[ServiceHealthPublic]:
    out = []
    for row in rows:
        status: Literal["running", "stopped", "stale"]
        if row["stopped_at"] is not None:
            status = "stopped"
        elif row["seconds_since_beat"] > config.stale_after_beats * row["interval_s"]:
            status = "stale"
        else:
            status = "running"
        detail: Any = row["detail"]
        out.append(ServiceHealthPublic(
            service=row["service"], instance=row["instance"], status=status, pid=row["pid"],
            host=row["host"], started_at=row["started_at"], beat_at=row["beat_at"],
            stopped_at=row["stopped_at"], interval_s=row["interval_s"],
            seconds_since_beat=row["seconds_since_beat"],
            detail=detail if isinstance(detail, dict) else {}))
    return out


async def assess(conn: asyncpg.Connection, config: HealthConfig, watch: StallWatch,
                 ) -> HealthPublic:
    running = services(await queries.heartbeats(conn), config)
    lag = await projection_lag(conn, config, watch)
    missing = [name for name in config.required_services
               if not any(s.service == name and s.status == "running" for s in running)]
    problems = [f"service {s.service} {s.instance} is stale: no heartbeat for "
                f"{s.seconds_since_beat:.0f} s" for s in running if s.status == "stale"]
    problems += [f"no running {name}" for name in missing]
    problems += [f"projection {p.projection} is stalled {p.events_behind} events behind "
                 f"{p.application} for {p.seconds_since_advance:.0f} s" for p in lag if p.stalled]
    # A group's parked events show on each of its projections: count them once.
    members = {name for names in config.groups for name in names[1:]}
    parked = sum(p.parked or 0 for p in lag if p.projection not in members)
    status: Literal["ok", "degraded", "failing"] = (
        "failing" if problems else "degraded" if parked else "ok")
    if parked:
        problems.append(f"{parked} events parked by projections (GET /v1/projections)")
    return HealthPublic(status=status, problems=problems, services=running,
                        missing_services=missing, projections=lag)
