"""Health, readiness and projection lag, as the API answers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.problems import Problem


class ServiceHealthPublic(BaseModel):
    """One long-running process, by its heartbeat row."""

    service: str = Field(description="relay, worker, projections, routing, b2bua, webhooks, "
                         "webhook-dispatcher or refresher.")
    instance: str = Field(description="Which one: an application name or a SIP address (a "
                          "singleton, which a restart takes over), or a host, `<name>@<host>` "
                          "(one of interchangeable replicas).")
    status: Literal["running", "stopped", "stale"] = Field(
        description="`stale`: no heartbeat for more than a few of its intervals and not "
        "stopped cleanly (it crashed or its main loop hangs). A replica's stale row, while "
        "another instance of its service runs, only degrades health, and is left out "
        "once older than DIALTONE_HEARTBEAT_FORGET_S, as is a replica's stopped row.")
    pid: int
    host: str
    started_at: datetime
    beat_at: datetime = Field(description="Its last heartbeat (or when it stopped).")
    stopped_at: datetime | None = Field(description="Set when it stopped cleanly.")
    interval_s: float = Field(description="Seconds between its heartbeats.")
    seconds_since_beat: float
    detail: dict[str, Any] = Field(description="What the process adds, e.g. its position.")


class SourceLagPublic(BaseModel):
    """How far one projection has applied one source (a store or a topic-partition)."""

    source: str = Field(description="`store:<application>` (in-process runner) or a Kafka "
                        "`<topic>:<partition>` (Faust worker).")
    position: int = Field(description="The store position (notification id) applied up to.")
    store_head: int | None = Field(description="The newest position in the source's store.")
    events_behind: int | None = Field(
        description="store_head - position; exact for a store source, null for a "
        "topic-partition (it carries only some of the store's events).")
    advanced_at: datetime = Field(description="When the position was last recorded.")
    seconds_since_advance: float
    parked: int | None = Field(description="Events parked (not applied) from this source; "
                               "null when the server has no dead-letter table.")


class ProjectionLagPublic(BaseModel):
    """One projection's lag behind one application's event store."""

    projection: str
    application: str | None = Field(
        description="The application whose store the sources belong to (null: unknown source).")
    position: int = Field(description="The highest position applied over its sources.")
    store_head: int | None
    events_behind: int | None = Field(
        description="store_head - position: exact for the in-process runner, a lower bound "
        "with Kafka partitions.")
    advanced_at: datetime
    seconds_since_advance: float
    stalled: bool = Field(description="Behind, and not advancing for longer than the stall "
                          "threshold.")
    parked: int | None
    waiting_calls: int | None = Field(
        default=None, description="call_events only: calls whose later events wait for an "
        "earlier one not yet applied (call_projection_gaps); their CDR and live row stop "
        "at the gap until it comes. Null for other projections.")
    oldest_waiting_s: float | None = Field(
        default=None, description="Seconds the longest of those calls has waited (null: none).")
    sources: list[SourceLagPublic]


class ProjectionsPublic(BaseModel):
    data: list[ProjectionLagPublic]
    count: int


class HealthPublic(BaseModel):
    """The API, its database, the processes that feed it, and projection lag."""

    status: Literal["ok", "degraded", "failing"] = Field(
        description="`failing` (answered with 503): a stale service (a replica only when no "
        "other instance of its service runs), a required service not running, or a stalled "
        "projection. `degraded`: events parked by projections, calls waiting longer than "
        "the stall threshold for an earlier event, or a replica stale while another instance "
        "of its service runs.")
    database: Literal["ok"] = "ok"
    problems: list[str] = Field(description="Why the status is not `ok`, for a human.")
    services: list[ServiceHealthPublic]
    missing_services: list[str] = Field(
        description="Required services with no running instance.")
    projections: list[ProjectionLagPublic]


class HealthProblem(Problem):
    """503 from /healthz: the platform is failing; `health` says where."""

    health: HealthPublic


class ReadyPublic(BaseModel):
    """This API process can serve: its database answers and is migrated."""

    status: Literal["ready"] = "ready"
