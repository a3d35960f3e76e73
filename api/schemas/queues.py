from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from api.schemas.agents import AgentStateName, Skills
from api.schemas.targets import KEY_PATTERN, QueueOverflow, StrictBody, TargetPublic
from api.schemas.text import VisibleText
from domain.queue import Queue, QueueTally

StrategyName = Literal["longest_idle", "round_robin", "ring_all", "fewest_calls", "skills_based"]
ServiceLevel = Annotated[float, Field(ge=1, le=3600, description="Threshold T in seconds.")]
WrapUp = Annotated[float, Field(ge=0, le=3600, description="After-call work, seconds.")]
ShortAbandon = Annotated[float, Field(ge=0, le=600, description=(
    "Calls abandoned sooner than this (seconds) are short abandons, counted apart "
    "(docs/metrics.md)."))]
OfferTimeout = Annotated[float, Field(ge=1, le=600, description=(
    "Seconds an offer rings before it counts as missed and the call is requeued."))]
MaxWait = Annotated[float, Field(ge=1, le=86_400, description=(
    "Seconds a call may wait before it goes to `overflow`."))]
Moh = Annotated[VisibleText, Field(min_length=1, max_length=100,
                                   description="Music-on-hold class.")]
RECORD_CALLS = ("The B2BUA records the audio of this queue's answered calls; each recording "
                "goes to object storage after the call (`GET /v1/calls/{id}/recording`, "
                "docs/recordings.md).")


class _Overflow(StrictBody):
    @model_validator(mode="after")
    def _overflow_pairs(self) -> Self:
        max_wait, overflow = getattr(self, "max_wait_s", None), getattr(self, "overflow", None)
        if (max_wait is None) != (overflow is None):
            raise ValueError("max_wait_s and overflow go together: give both or neither")
        return self


class QueueCreate(_Overflow):
    key: str = Field(pattern=KEY_PATTERN, description="Stable lowercase name, e.g. `sales`.")
    name: VisibleText = Field(min_length=1, max_length=200)
    strategy: StrategyName = "longest_idle"
    service_level_s: ServiceLevel = 20.0
    wrap_up_s: WrapUp = 0.0
    offer_timeout_s: OfferTimeout = 15.0
    music_on_hold: Moh = "default"
    announce_position: bool = False
    record_calls: bool = Field(default=False, description=RECORD_CALLS)
    max_wait_s: MaxWait | None = None
    overflow: QueueOverflow | None = Field(default=None, description=(
        "Where calls go after `max_wait_s`: a queue, a number or a recording."))
    required_skills: Skills = Field(default_factory=dict, description=(
        "Skill -> minimum level an agent needs (skills-based routing)."))


class QueueUpdate(_Overflow):
    """Fields to change; absent fields stay. `max_wait_s` and `overflow` null
    (both) clear the overflow."""

    strategy: StrategyName | None = None
    service_level_s: ServiceLevel | None = None
    short_abandon_s: ShortAbandon | None = None
    wrap_up_s: WrapUp | None = None
    offer_timeout_s: OfferTimeout | None = None
    music_on_hold: Moh | None = None
    announce_position: bool | None = None
    record_calls: bool | None = Field(default=None, description=RECORD_CALLS)
    max_wait_s: MaxWait | None = None
    overflow: QueueOverflow | None = None
    required_skills: Skills | None = Field(default=None, description="The complete new set.")


class MemberSet(StrictBody):
    penalty: int = Field(ge=0, le=100, description="Lower is offered first.")


class MemberPublic(BaseModel):
    agent_id: UUID
    penalty: int


class QueueCounters(BaseModel):
    """Running totals since the queue was created.

    offered = answered + abandoned + overflowed + transferred_out + calls in the
    queue now. `service_level` = answered within T / (answered + abandoned
    after T): calls abandoned within T are excluded, as are overflowed and
    transferred ones. `abandon_rate` = abandoned / (answered + abandoned)."""

    offered: int
    answered: int
    answered_within_sl: int
    abandoned: int
    abandoned_within_sl: int
    overflowed: int
    transferred_in: int
    transferred_out: int
    requeued: int
    agent_offers: int = Field(description="Rings to agents (a call may ring several).")
    service_level: float | None
    abandon_rate: float | None

    @classmethod
    def of(cls, tally: QueueTally) -> QueueCounters:
        return cls(**vars(tally), service_level=tally.service_level(),
                   abandon_rate=tally.abandon_rate())


class QueuePublic(BaseModel):
    """A queue's settings, members and counters."""

    id: UUID
    key: str
    name: str
    strategy: StrategyName
    service_level_s: float
    short_abandon_s: float
    wrap_up_s: float
    offer_timeout_s: float
    music_on_hold: str
    announce_position: bool
    record_calls: bool = Field(description=RECORD_CALLS)
    max_wait_s: float | None
    overflow: TargetPublic | None
    required_skills: dict[str, int]
    members: list[MemberPublic]
    counters: QueueCounters
    version: int = Field(description="Version of the queue's last event reflected here.")

    @classmethod
    def of(cls, queue: Queue) -> QueuePublic:
        """From the aggregate, as a command left it."""
        return cls(
            id=queue.id, key=queue.key, name=queue.name, strategy=queue.strategy.value,
            service_level_s=queue.service_level_s, short_abandon_s=queue.short_abandon_s,
            wrap_up_s=queue.wrap_up_s,
            offer_timeout_s=queue.offer_timeout_s, music_on_hold=queue.music_on_hold,
            announce_position=queue.announce_position, record_calls=queue.record_calls,
            max_wait_s=queue.max_wait_s,
            overflow=TargetPublic.of(queue.overflow_target),
            required_skills=dict(queue.required_skills),
            members=[MemberPublic(agent_id=a, penalty=m.penalty)
                     for a, m in sorted(queue.members.items())],
            counters=QueueCounters.of(queue.tally), version=queue.version,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any], members: list[MemberPublic]) -> QueuePublic:
        """From the queue_live projection."""
        tally = QueueTally(**{name: row[name] for name in vars(QueueTally())})
        overflow = None
        if row["overflow_kind"] is not None:
            overflow = TargetPublic(kind=row["overflow_kind"], value=row["overflow_value"])
        return cls(**{name: row[name] for name in (
            "key", "name", "strategy", "service_level_s", "short_abandon_s", "wrap_up_s",
            "offer_timeout_s",
            "music_on_hold", "announce_position", "record_calls", "max_wait_s",
            "required_skills")},
            id=row["queue_id"], overflow=overflow, members=members,
            counters=QueueCounters.of(tally), version=row["last_version"])


class QueuesPublic(BaseModel):
    data: list[QueuePublic]
    count: int


class QueuedCallPublic(BaseModel):
    call_id: UUID
    position: int = Field(description="1-based place in service order, ringing calls included.")
    priority: int
    enqueued_at: datetime
    wait_s: float = Field(description="Seconds in this queue so far.")
    ringing_agents: list[UUID] = Field(description="Agents the call is offered to now.")
    transferred_from: UUID | None


class QueueMemberPublic(BaseModel):
    agent_id: UUID
    key: str | None = Field(description="The agent's key (null until projected).")
    penalty: int
    state: AgentStateName | None
    state_since: datetime | None


class QueueMembersPublic(BaseModel):
    data: list[QueueMemberPublic]
    count: int


class QueueLivePublic(BaseModel):
    """The queue right now: calls in it with position and wait, agents by state."""

    queue_id: UUID
    key: str
    calls: list[QueuedCallPublic]
    calls_waiting: int = Field(description="Calls not ringing any agent.")
    calls_ringing: int
    oldest_wait_s: float | None
    agents: dict[AgentStateName, int] = Field(description="Member agents by state.")
    counters: QueueCounters
    asa_s: float | None = Field(description="Average speed of answer: answered waits / answered.")
    as_of: datetime
