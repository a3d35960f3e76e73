from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, model_validator

from api.schemas.targets import KEY_PATTERN, SKILL_PATTERN, StrictBody
from api.schemas.text import VisibleText
from application.identity.sip_credentials import SIP_USER_PATTERN
from domain.agent import Agent
from domain.skills import MAX_SKILLS

AgentStateName = Literal["logged_out", "available", "reserved", "on_call", "wrap_up", "paused"]
SkillName = Annotated[str, StringConstraints(pattern=SKILL_PATTERN)]
Level = Annotated[int, Field(ge=1, le=100)]
# A name outside the pattern is refused, not ignored: the document says so.
Skills = Annotated[dict[SkillName, Level], Field(
    max_length=MAX_SKILLS, json_schema_extra={"additionalProperties": False})]
AutoPause = Annotated[int | None, Field(ge=1, le=100, description=(
    "Pause the agent after this many offers missed in a row; null: never."))]


class AgentCreate(StrictBody):
    key: str = Field(pattern=KEY_PATTERN, description="Stable lowercase name, e.g. `alice`.")
    name: VisibleText = Field(min_length=1, max_length=200)
    skills: Skills = Field(default_factory=dict, description=(
        f"Skill -> level (1-100); at most {MAX_SKILLS} skills."))
    auto_pause_after: AutoPause = None


class AgentUpdate(StrictBody):
    """Fields to change; absent fields stay as they are."""

    skills: Skills | None = Field(default=None, description="The complete new set of skills.")
    auto_pause_after: AutoPause = None


class SkillLevel(StrictBody):
    level: Level


class AgentLogin(StrictBody):
    """Log in on a device named by its URI, or by the extension of a registering
    device: exactly one of the two."""

    device_uri: str | None = Field(default=None, pattern=r"^sips?:[^\s\x00]+$", max_length=256,
                                   description="Where offers ring, e.g. "
                                   "`sip:1001@pbx.example.com`.")
    extension: str | None = Field(default=None, pattern=SIP_USER_PATTERN, max_length=64,
                                  examples=["desk-101"], description="A device provisioned in "
                                  "the tenant's SIP domain (`/v1/auth/sip/credentials`): offers "
                                  "ring where it registered, `sip:<extension>@<domain>`.")

    @model_validator(mode="after")
    def _one_device(self) -> Self:
        if (self.device_uri is None) == (self.extension is None):
            raise ValueError("give either device_uri or extension")
        return self


class AgentPause(StrictBody):
    reason: VisibleText = Field(min_length=1, max_length=100,
                        examples=["lunch", "training"])


class AgentPublic(BaseModel):
    """An agent and its current state."""

    id: UUID
    key: str
    name: str
    state: AgentStateName
    state_since: datetime
    device_uri: str | None = Field(description="Set while logged in.")
    pause_reason: str | None
    current_call_id: UUID | None = Field(description=(
        "The call offered or in progress (in wrap-up, as read from GET: the call just ended)."))
    current_queue_id: UUID | None
    offer_deadline: datetime | None = Field(description="While reserved: when the offer times out.")
    wrap_up_until: datetime | None
    skills: dict[str, int]
    auto_pause_after: int | None
    missed_offers: int
    calls_handled: int
    version: int = Field(description="Version of the agent's last event reflected here.")

    @classmethod
    def of(cls, agent: Agent) -> AgentPublic:
        """From the aggregate, as a command left it."""
        return cls(
            id=agent.id, key=agent.key, name=agent.name, state=agent.state.value,
            state_since=agent.state_since, device_uri=agent.device_uri,
            pause_reason=agent.pause_reason, current_call_id=agent.current_call_id,
            current_queue_id=agent.current_queue_id, offer_deadline=agent.offer_deadline,
            wrap_up_until=agent.wrap_up_until, skills=dict(agent.skills),
            auto_pause_after=agent.auto_pause_after, missed_offers=agent.missed_offers,
            calls_handled=agent.calls_handled, version=agent.version,
        )


class AgentsPublic(BaseModel):
    data: list[AgentPublic]
    count: int


class AgentIntervalPublic(BaseModel):
    """One period the agent spent in one state."""

    state: AgentStateName
    reason: str | None = Field(description="The pause reason, for paused periods.")
    call_id: UUID | None
    queue_id: UUID | None
    started_at: datetime
    ended_at: datetime | None = Field(description="Null while the period is still going on.")
    duration_s: float | None


class AgentIntervalsPublic(BaseModel):
    agent_id: UUID
    data: list[AgentIntervalPublic]
    count: int


class SkillPublic(BaseModel):
    skill: str
    agents: int = Field(description="Agents holding the skill.")
    queues: int = Field(description="Queues requiring it.")


class SkillsPublic(BaseModel):
    data: list[SkillPublic]
    count: int
