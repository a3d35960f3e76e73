"""`GET /v1/reports/queues` and `/v1/reports/agents`: interval reports (issue 11 §1).

Each row is one queue's (agent's) figures over one report bucket [since, until);
the figures are projections/kpi.py's (docs/metrics.md, docs/reports.md). The
CSV export has one column per field, in these models' order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.live import QueueFigures

IntervalName = Literal["15m", "1h", "1d"]


class QueueReportRow(QueueFigures):
    queue_id: UUID
    key: str | None = Field(description="The queue's key (null if it no longer exists).")
    name: str | None
    talk_s: float = Field(description="Talk time of the calls handled in the bucket "
                          "(their time on hold left out).")
    hold_s: float = Field(description="Time those calls were on hold while the agent "
                          "handled them.")
    wrap_up_s: float = Field(description="After-call work of the calls handled in the bucket.")


class AgentReportRow(BaseModel):
    since: datetime
    until: datetime
    agent_id: UUID
    key: str | None = Field(description="The agent's key (null if it no longer exists).")
    name: str | None
    handled: int = Field(description="Calls whose after-call work ended in the bucket.")
    talk_s: float = Field(description="Talk time of those calls (hold left out).")
    hold_s: float = Field(description="Time those calls were on hold.")
    wrap_up_s: float = Field(description="After-call work of those calls.")
    aht_s: float | None = Field(description="(talk + hold + wrap-up) / handled.")
    missed_offers: int
    occupancy: float | None = Field(description=(
        "(on call + wrap-up) / (staffed - paused), 0..1; null when never available."))
    staffed_s: float = Field(description="Time logged in, in any state.")
    paused_s: float
    on_call_s: float
    wrap_up_state_s: float = Field(description="Time in the wrap_up state.")
    time_by_state: dict[str, float] = Field(description="Seconds per logged-in state.")
    pause_by_reason: dict[str, float] = Field(description="Seconds paused per reason.")


class QueueReport(BaseModel):
    interval: IntervalName
    time_zone: str = Field(description="The tenant's zone: hours and days are local.")
    since: datetime = Field(description="Start of the first bucket.")
    until: datetime = Field(description="End of the last bucket asked for.")
    data: list[QueueReportRow]
    count: int


class AgentReport(BaseModel):
    interval: IntervalName
    time_zone: str
    since: datetime
    until: datetime
    data: list[AgentReportRow]
    count: int


QUEUE_COLUMNS = tuple(QueueReportRow.model_fields)
AGENT_COLUMNS = tuple(AgentReportRow.model_fields)
