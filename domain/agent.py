"""The Agent aggregate: one call-centre agent's presence, offers and calls.

States and the commands that move between them (anything else raises
``IllegalTransition``; every legal command emits exactly one event)::

    logged_out --login--> available
    available  --reserve(call)--> reserved        (offered a call, until a deadline)
    reserved   --accept_offer--> on_call
    reserved   --miss_offer--> available | paused  (auto-pause after N misses in a row)
    reserved   --cancel_offer--> available         (caller hung up, or ring-all lost)
    on_call    --end_call(wrap_up_s)--> wrap_up | available (wrap_up_s == 0)
    wrap_up    --finish_wrap_up--> available       (issued by the agent, or the router's
                                                    timer once ``wrap_up_until`` passed)
    available | wrap_up | paused --pause(reason)--> paused (a new reason re-pauses)
    paused     --resume--> available
    available | wrap_up | paused --logout--> logged_out

An agent is never on two calls: ``reserve`` is only legal when available, and
``reserved``/``on_call`` always hold exactly one ``current_call_id``. Two
routers reserving the same agent both load version N and both append version
N+1: the event store refuses the second (optimistic concurrency), so the
reservation *is* the lock.

Skills and the auto-pause threshold are configuration: setting them to the
value they already have is a no-op, not an event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.addressing import DEFAULT_TENANT, check_tenant, config_id
from domain.errors import IllegalTransition, InvalidValue
from domain.limits import check_int, check_seconds, check_uuid
from domain.skills import check_level, check_room, check_skill, check_skills
from domain.timed import TimedAggregate
from domain.values import non_empty, utc_instant

__all__ = ["AUTO_PAUSE_REASON", "Agent", "AgentState", "UnknownSkill", "WrongCall"]

AUTO_PAUSE_REASON = "missed-offers"
MAX_OFFER_TIMEOUT_S = 600.0
MAX_WRAP_UP_S = 3600.0
MAX_AUTO_PAUSE_AFTER = 100
DEVICE_URI = re.compile(r"sips?:\S+")


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


WITH_CALL = frozenset({AgentState.RESERVED, AgentState.ON_CALL})
CAN_PAUSE = frozenset({AgentState.AVAILABLE, AgentState.WRAP_UP, AgentState.PAUSED})
CAN_LOG_OUT = CAN_PAUSE


class WrongCall(IllegalTransition):
    """The command names a call the agent is not reserved for or on."""


class UnknownSkill(InvalidValue):
    """The agent does not hold the skill the command names."""


class Agent(TimedAggregate):
    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        key: str
        name: str
        skills: dict[str, int]
        auto_pause_after: int | None
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class SkillSet(TimedAggregate.Event):
        class_version = 1
        skill: str
        level: int

        def apply(self, agent: Agent) -> None:
            agent.skills[self.skill] = self.level

    class SkillRemoved(TimedAggregate.Event):
        class_version = 1
        skill: str

        def apply(self, agent: Agent) -> None:
            del agent.skills[self.skill]

    class AutoPauseChanged(TimedAggregate.Event):
        class_version = 1
        auto_pause_after: int | None

        def apply(self, agent: Agent) -> None:
            agent.auto_pause_after = self.auto_pause_after

    class LoggedIn(TimedAggregate.Event):
        class_version = 1
        device_uri: str

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.AVAILABLE, self.occurred_at)
            agent.device_uri = self.device_uri

    class LoggedOut(TimedAggregate.Event):
        class_version = 1

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.LOGGED_OUT, self.occurred_at)
            agent.device_uri = None

    class Paused(TimedAggregate.Event):
        class_version = 1
        reason: str

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.PAUSED, self.occurred_at)
            agent.pause_reason = self.reason

    class Resumed(TimedAggregate.Event):
        class_version = 1

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.AVAILABLE, self.occurred_at)

    class Reserved(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        queue_id: UUID | None  # None: a direct call to the agent, not from a queue
        offer_deadline: datetime

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.RESERVED, self.occurred_at)
            agent.current_call_id = self.call_id
            agent.current_queue_id = self.queue_id
            agent.offer_deadline = self.offer_deadline

    class OfferAccepted(TimedAggregate.Event):
        class_version = 1
        call_id: UUID

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.ON_CALL, self.occurred_at)  # keeps the offer's call
            agent.consecutive_misses = 0

    class OfferMissed(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        auto_paused: bool

        def apply(self, agent: Agent) -> None:
            agent.missed_offers += 1
            if self.auto_paused:
                agent._enter(AgentState.PAUSED, self.occurred_at)
                agent.pause_reason = AUTO_PAUSE_REASON
                agent.consecutive_misses = 0  # the pause is the consequence; start afresh
            else:
                agent._enter(AgentState.AVAILABLE, self.occurred_at)
                agent.consecutive_misses += 1

    class OfferCancelled(TimedAggregate.Event):
        class_version = 1
        call_id: UUID

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.AVAILABLE, self.occurred_at)

    class CallEnded(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        queue_id: UUID | None
        wrap_up_until: datetime | None  # None: no after-call work, straight to available

        def apply(self, agent: Agent) -> None:
            agent.calls_handled += 1
            if self.wrap_up_until is None:
                agent._enter(AgentState.AVAILABLE, self.occurred_at)
            else:
                agent._enter(AgentState.WRAP_UP, self.occurred_at)
                agent.wrap_up_until = self.wrap_up_until

    class WrapUpFinished(TimedAggregate.Event):
        class_version = 1

        def apply(self, agent: Agent) -> None:
            agent._enter(AgentState.AVAILABLE, self.occurred_at)

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        key: str,
        name: str,
        skills: dict[str, int],
        auto_pause_after: int | None,
        occurred_at: datetime,
    ) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
        self.tenant = tenant
        self.key = key
        self.name = name
        self.skills = dict(skills)
        self.auto_pause_after = auto_pause_after
        self.device_uri: str | None = None
        self.missed_offers = 0
        self.consecutive_misses = 0
        self.calls_handled = 0
        self.current_call_id: UUID | None = None
        self.current_queue_id: UUID | None = None
        self.offer_deadline: datetime | None = None
        self.wrap_up_until: datetime | None = None
        self.pause_reason: str | None = None
        self.state = AgentState.LOGGED_OUT
        self.state_since = occurred_at

    # -- creation and configuration -------------------------------------------------

    @staticmethod
    def id_for(key: str, tenant: str = DEFAULT_TENANT) -> UUID:
        return config_id("agent", key, tenant)

    @classmethod
    def create(
        cls,
        key: str,
        name: str,
        skills: Mapping[str, int] | None = None,
        *,
        occurred_at: datetime,
        auto_pause_after: int | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> Agent:
        """A new, logged-out agent of ``tenant``. ``auto_pause_after``: pause the agent
        after that many offers missed in a row (None: never)."""
        return cls._create(
            cls.Created,
            id=cls.id_for(key, tenant),
            tenant=check_tenant(tenant),
            key=key,
            name=non_empty("name", name),
            skills=check_skills(skills or {}),
            auto_pause_after=_checked_auto_pause(auto_pause_after),
            occurred_at=utc_instant(occurred_at),
        )

    def set_skill(self, skill: str, level: int, occurred_at: datetime) -> None:
        if self.skills.get(check_skill(skill)) == check_level(level):
            return
        check_room(self.skills, skill)
        self._trigger(self.SkillSet, occurred_at, skill=skill, level=level)

    def remove_skill(self, skill: str, occurred_at: datetime) -> None:
        if skill not in self.skills:
            raise UnknownSkill(f"agent {self.key} has no skill {skill!r}")
        self._trigger(self.SkillRemoved, occurred_at, skill=skill)

    def set_auto_pause(self, auto_pause_after: int | None, occurred_at: datetime) -> None:
        if _checked_auto_pause(auto_pause_after) == self.auto_pause_after:
            return
        self._trigger(self.AutoPauseChanged, occurred_at, auto_pause_after=auto_pause_after)

    # -- presence -------------------------------------------------------------------

    def login(self, device_uri: str, occurred_at: datetime) -> None:
        self._require({AgentState.LOGGED_OUT}, "log in")
        self._trigger(self.LoggedIn, occurred_at, device_uri=_checked_device(device_uri))

    def logout(self, occurred_at: datetime) -> None:
        self._require(CAN_LOG_OUT, "log out")
        self._trigger(self.LoggedOut, occurred_at)

    def pause(self, reason: str, occurred_at: datetime) -> None:
        self._require(CAN_PAUSE, "pause")
        if self.state is AgentState.PAUSED and non_empty("reason", reason) == self.pause_reason:
            raise IllegalTransition(f"agent {self.key} is already paused for {reason!r}")
        self._trigger(self.Paused, occurred_at, reason=non_empty("reason", reason))

    def resume(self, occurred_at: datetime) -> None:
        self._require({AgentState.PAUSED}, "resume")
        self._trigger(self.Resumed, occurred_at)

    # -- offers and calls -----------------------------------------------------------

    def reserve(
        self, call_id: UUID, queue_id: UUID | None, offer_timeout_s: float, occurred_at: datetime
    ) -> None:
        """Offer ``call_id`` to this agent until ``occurred_at + offer_timeout_s``."""
        self._require({AgentState.AVAILABLE}, "reserve")
        timeout = check_seconds("offer_timeout_s", offer_timeout_s, 1.0, MAX_OFFER_TIMEOUT_S)
        deadline = utc_instant(occurred_at) + timedelta(seconds=timeout)
        self._trigger(
            self.Reserved,
            occurred_at,
            call_id=check_uuid("call_id", call_id),
            queue_id=None if queue_id is None else check_uuid("queue_id", queue_id),
            offer_deadline=deadline,
        )

    def accept_offer(self, call_id: UUID, occurred_at: datetime) -> None:
        self._require_call({AgentState.RESERVED}, call_id, "accept an offer")
        self._trigger(self.OfferAccepted, occurred_at, call_id=call_id)

    def miss_offer(
        self, call_id: UUID, occurred_at: datetime, auto_pause_after: int | None = None
    ) -> None:
        """The offer rang out or was rejected. ``auto_pause_after`` overrides the
        agent's own threshold for this decision."""
        self._require_call({AgentState.RESERVED}, call_id, "miss an offer")
        override = _checked_auto_pause(auto_pause_after)
        limit = self.auto_pause_after if override is None else override
        auto_paused = limit is not None and self.consecutive_misses + 1 >= limit
        self._trigger(self.OfferMissed, occurred_at, call_id=call_id, auto_paused=auto_paused)

    def cancel_offer(self, call_id: UUID, occurred_at: datetime) -> None:
        """The offer was withdrawn, not missed: no miss is counted."""
        self._require_call({AgentState.RESERVED}, call_id, "cancel an offer")
        self._trigger(self.OfferCancelled, occurred_at, call_id=call_id)

    def end_call(self, call_id: UUID, wrap_up_s: float, occurred_at: datetime) -> None:
        """The call ended; ``wrap_up_s`` (from the queue) of after-call work follow."""
        self._require_call({AgentState.ON_CALL}, call_id, "end a call")
        seconds = check_seconds("wrap_up_s", wrap_up_s, 0.0, MAX_WRAP_UP_S)
        until = utc_instant(occurred_at) + timedelta(seconds=seconds) if seconds else None
        self._trigger(
            self.CallEnded,
            occurred_at,
            call_id=call_id,
            queue_id=self.current_queue_id,
            wrap_up_until=until,
        )

    def finish_wrap_up(self, occurred_at: datetime) -> None:
        self._require({AgentState.WRAP_UP}, "finish wrap-up")
        self._trigger(self.WrapUpFinished, occurred_at)

    # -- queries --------------------------------------------------------------------

    @property
    def idle_since(self) -> datetime | None:
        """When the agent last became available (None unless available now)."""
        return self.state_since if self.state is AgentState.AVAILABLE else None

    def offer_expired(self, now: datetime) -> bool:
        return self.offer_deadline is not None and utc_instant(now) >= self.offer_deadline

    def wrap_up_due(self, now: datetime) -> bool:
        return self.wrap_up_until is not None and utc_instant(now) >= self.wrap_up_until

    # -- state changes, used only by the events' apply methods ----------------------

    def _enter(self, state: AgentState, at: datetime) -> None:
        """Move to ``state`` and drop what belonged to the state left behind."""
        self.state = state
        self.state_since = at
        if state not in WITH_CALL:
            self.current_call_id = None
            self.current_queue_id = None
        if state is not AgentState.RESERVED:
            self.offer_deadline = None
        if state is not AgentState.WRAP_UP:
            self.wrap_up_until = None
        if state is not AgentState.PAUSED:
            self.pause_reason = None

    def _require(self, allowed: frozenset[AgentState] | set[AgentState], action: str) -> None:
        if self.state not in allowed:
            raise IllegalTransition(f"agent {self.key} cannot {action}: it is {self.state}")

    def _require_call(self, allowed: set[AgentState], call_id: UUID, action: str) -> None:
        self._require(allowed, action)
        if call_id != self.current_call_id:
            raise WrongCall(
                f"agent {self.key} cannot {action} for call {call_id}: "
                f"its call is {self.current_call_id}"
            )


def _checked_auto_pause(auto_pause_after: int | None) -> int | None:
    if auto_pause_after is None:
        return None
    return check_int("auto_pause_after", auto_pause_after, 1, MAX_AUTO_PAUSE_AFTER)


def _checked_device(device_uri: str) -> str:
    if not isinstance(device_uri, str) or not DEVICE_URI.fullmatch(device_uri):
        raise InvalidValue(f"device_uri must be a sip: or sips: URI, got {device_uri!r}")
    return device_uri
