"""`GET /v1/live`: the supervisor's snapshot of a tenant, as the caller's role may see it.

Every figure is defined once, in projections/kpi.py (docs/metrics.md); these
models only carry them. Time-driven values (a wait, time in state, a window)
are computed at `as_of`, so a snapshot is right without any new event.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.agents import AgentStateName


class QueueFigures(BaseModel):
    """A queue's (or the tenant's) figures over one window [since, until)."""

    since: datetime
    until: datetime
    offered: int = Field(description="Calls that entered the queue (transfers in included).")
    answered: int
    answered_within_sl: int = Field(description="Answered with a wait <= the queue's T.")
    abandoned: int = Field(description="Hung up while waiting, short abandons excluded.")
    short_abandoned: int = Field(description="Hung up before the queue's short-abandon threshold.")
    transferred_in: int
    transferred_out: int
    overflowed: int
    service_level: float | None = Field(description=(
        "answered_within_sl / (offered - short_abandoned), 0..1; null with nothing offered."))
    asa_s: float | None = Field(description="Average speed of answer (wait of answered calls).")
    aht_s: float | None = Field(description="Average handle time: talk + hold + wrap-up.")
    longest_wait_s: float | None = Field(description=(
        "Longest wait of a call that left in the window, or is still waiting."))
    abandonment_rate: float | None = Field(description=(
        "abandoned / (offered - short_abandoned), 0..1."))


class QueueNow(BaseModel):
    calls_waiting: int = Field(description="In the queue, not ringing an agent.")
    calls_ringing: int = Field(description="In the queue, ringing an agent.")
    oldest_wait_s: float | None
    agents_staffed: int = Field(description="Member agents logged in (any state but logged_out).")
    agents_available: int
    agents_reserved: int
    agents_on_call: int
    agents_wrap_up: int
    agents_paused: int
    paused_by_reason: dict[str, int]


class QueueLive(BaseModel):
    queue_id: UUID
    key: str
    name: str
    service_level_s: float = Field(description="The queue's threshold T, seconds.")
    short_abandon_s: float = Field(description="The queue's short-abandon threshold, seconds.")
    now: QueueNow
    today: QueueFigures
    window: QueueFigures


class AgentLive(BaseModel):
    agent_id: UUID
    key: str
    name: str
    state: AgentStateName
    state_since: datetime
    time_in_state_s: float
    pause_reason: str | None
    current_call_id: UUID | None = Field(description="Null for roles without calls:read.")
    current_queue_id: UUID | None
    handled_today: int
    aht_today_s: float | None
    occupancy_today: float | None = Field(description=(
        "(talk + wrap-up) / (staffed - paused) since local midnight, 0..1."))
    missed_offers_today: int


class CallLive(BaseModel):
    call_id: UUID
    status: str
    direction: str
    caller: str
    callee: str
    queue: str | None
    started_at: datetime
    answered_at: datetime | None
    on_hold_since: datetime | None
    duration_s: float


class TenantSummary(BaseModel):
    calls_waiting: int
    oldest_wait_s: float | None
    calls_in_progress: int | None = Field(description="Null for roles without calls:read.")
    agents_staffed: int
    agents_available: int
    agents_on_call: int
    agents_wrap_up: int
    agents_paused: int
    today: QueueFigures
    window: QueueFigures


class LiveSnapshot(BaseModel):
    tenant: str
    as_of: datetime = Field(description="The database clock the time-driven values use.")
    time_zone: str = Field(description="The tenant's IANA zone: `today` starts at its midnight.")
    window_s: float = Field(description="Length of the rolling window, seconds.")
    position: dict[str, int] = Field(description=(
        "Per event source (`store:<app>` or a Kafka topic-partition), the store position "
        "the call-centre and call projections had applied when the snapshot was read."))
    queues: list[QueueLive]
    agents: list[AgentLive]
    calls: list[CallLive] | None = Field(description="Null for roles without calls:read.")
    summary: TenantSummary | None = Field(description="Null for roles without reports:read.")


class ServiceLevelBucket(BaseModel):
    """One queue's service level over one bucket [since, until) of the day."""

    since: datetime
    until: datetime
    offered: int = Field(description="Visits that started in the bucket.")
    answered: int = Field(description="Answered in the bucket.")
    answered_within_sl: int = Field(description="Answered in the bucket with a wait <= T.")
    short_abandoned: int = Field(description="Short abandons in the bucket.")
    service_level: float | None = Field(description=(
        "answered_within_sl / (offered - short_abandoned), 0..1; null with nothing offered."))


class QueueServiceLevel(BaseModel):
    queue_id: UUID
    key: str
    name: str
    buckets: list[ServiceLevelBucket]


class ServiceLevelDay(BaseModel):
    tenant: str
    as_of: datetime = Field(description="The database clock; the last bucket ends after it.")
    time_zone: str
    since: datetime = Field(description="Local midnight in the tenant's zone.")
    day_until: datetime = Field(description="The next local midnight (a DST day is 23 or 25 h).")
    bucket_s: float
    queues: list[QueueServiceLevel]
