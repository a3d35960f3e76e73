"""A queue's configuration: its settings events and the commands that emit them.

One half of the ``Queue`` aggregate (domain/queue.py), written by people
through the API: routing strategy, service-level threshold T, max wait and
overflow target, after-call wrap-up length, offer (ring) timeout, music on
hold, position announcements, short-abandon threshold, whether its calls are
recorded, members (agent id -> penalty) and required skills (for
skills-based routing). Every change is an event, the audit trail. Setting a
value to what it already is emits nothing; adding a member twice or removing
an absent one raises.

The events below are templates (fields and ``apply``): ``Queue`` declares each
in its class body on top of its template, so what is stored and published is
``domain.queue:Queue.<Name>`` (``dialtone.queue.<name>.v1``) whichever module
holds the code; the commands name the template and ``Queue._trigger``
triggers the aggregate's own declaration.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.addressing import Target, TargetKind
from domain.errors import InvalidValue
from domain.limits import check_int, check_seconds, check_uuid
from domain.queue_values import QueueMember
from domain.routing import RoutingPolicy, RoutingStrategy
from domain.skills import check_level, check_room, check_skill
from domain.timed import TimedAggregate
from domain.values import enum_member, non_empty

__all__ = [
    "DEFAULT_SHORT_ABANDON_S",
    "MAX_MEMBERS",
    "NotAMember",
    "QueueConfiguration",
]

OVERFLOW_KINDS = frozenset({TargetKind.QUEUE, TargetKind.NUMBER, TargetKind.RECORDING})
MAX_PENALTY = 100
# Members of one queue: every offer ranks them all, so the set stays bounded.
MAX_MEMBERS = 1000
MAX_WAIT_S = 86_400.0
DEFAULT_SHORT_ABANDON_S = 5.0

# For the type checker the mixin is the aggregate it is mixed into (``_trigger``,
# ``id``); at run time it is a plain class, so eventsourcing sees one aggregate.
if TYPE_CHECKING:
    _Aggregate = TimedAggregate
else:
    _Aggregate = object


class NotAMember(InvalidValue):
    """The command names an agent that is not a member of this queue."""


class StrategyChanged(TimedAggregate.Event):
    class_version = 1
    strategy: str

    def apply(self, queue: QueueConfiguration) -> None:
        queue.strategy = RoutingStrategy(self.strategy)


class ServiceLevelChanged(TimedAggregate.Event):
    class_version = 1
    service_level_s: float

    def apply(self, queue: QueueConfiguration) -> None:
        queue.service_level_s = self.service_level_s


class OverflowSet(TimedAggregate.Event):
    class_version = 1
    max_wait_s: float
    target_kind: str
    target_value: str | None

    def apply(self, queue: QueueConfiguration) -> None:
        queue.max_wait_s = self.max_wait_s
        queue.overflow_target = Target(TargetKind(self.target_kind), self.target_value)


class OverflowCleared(TimedAggregate.Event):
    class_version = 1

    def apply(self, queue: QueueConfiguration) -> None:
        queue.max_wait_s = None
        queue.overflow_target = None


class WrapUpChanged(TimedAggregate.Event):
    class_version = 1
    wrap_up_s: float

    def apply(self, queue: QueueConfiguration) -> None:
        queue.wrap_up_s = self.wrap_up_s


class OfferTimeoutChanged(TimedAggregate.Event):
    class_version = 1
    offer_timeout_s: float

    def apply(self, queue: QueueConfiguration) -> None:
        queue.offer_timeout_s = self.offer_timeout_s


class MusicOnHoldChanged(TimedAggregate.Event):
    class_version = 1
    music_on_hold: str

    def apply(self, queue: QueueConfiguration) -> None:
        queue.music_on_hold = self.music_on_hold


class PositionAnnouncementsChanged(TimedAggregate.Event):
    class_version = 1
    announce_position: bool

    def apply(self, queue: QueueConfiguration) -> None:
        queue.announce_position = self.announce_position


class ShortAbandonChanged(TimedAggregate.Event):
    class_version = 1
    short_abandon_s: float

    def apply(self, queue: QueueConfiguration) -> None:
        queue.short_abandon_s = self.short_abandon_s


class RecordingPolicyChanged(TimedAggregate.Event):
    class_version = 1
    record_calls: bool

    def apply(self, queue: QueueConfiguration) -> None:
        queue.record_calls = self.record_calls


class MemberAdded(TimedAggregate.Event):
    class_version = 1
    agent_id: UUID
    penalty: int

    def apply(self, queue: QueueConfiguration) -> None:
        queue.members[self.agent_id] = QueueMember(self.penalty)


class MemberChanged(TimedAggregate.Event):
    class_version = 1
    agent_id: UUID
    penalty: int

    def apply(self, queue: QueueConfiguration) -> None:
        member = queue.members[self.agent_id]
        queue.members[self.agent_id] = replace(member, penalty=self.penalty)


class MemberRemoved(TimedAggregate.Event):
    class_version = 1
    agent_id: UUID

    def apply(self, queue: QueueConfiguration) -> None:
        del queue.members[self.agent_id]


class SkillRequired(TimedAggregate.Event):
    class_version = 1
    skill: str
    min_level: int

    def apply(self, queue: QueueConfiguration) -> None:
        queue.required_skills[self.skill] = self.min_level


class SkillRequirementDropped(TimedAggregate.Event):
    class_version = 1
    skill: str

    def apply(self, queue: QueueConfiguration) -> None:
        del queue.required_skills[self.skill]


class QueueConfiguration(_Aggregate):
    """The settings half of ``Queue``: its state, commands and queries."""

    def _init_configuration(
        self,
        *,
        tenant: str,
        key: str,
        name: str,
        strategy: str,
        service_level_s: float,
        wrap_up_s: float,
        offer_timeout_s: float,
        music_on_hold: str,
        announce_position: bool,
    ) -> None:
        """The settings as ``Queue.Created`` states them (on creation and replay)."""
        self.tenant = tenant
        self.key = key
        self.name = name
        self.strategy = RoutingStrategy(strategy)
        self.service_level_s = service_level_s
        self.wrap_up_s = wrap_up_s
        self.offer_timeout_s = offer_timeout_s
        self.music_on_hold = music_on_hold
        self.announce_position = announce_position
        # Not in Created (version 1 of that event predates it): off until set.
        self.record_calls = False
        # Also not in Created: a call abandoned sooner is a short abandon, counted apart.
        self.short_abandon_s = DEFAULT_SHORT_ABANDON_S
        self.max_wait_s: float | None = None
        self.overflow_target: Target | None = None
        self.members: dict[UUID, QueueMember] = {}
        self.required_skills: dict[str, int] = {}

    # -- commands --------------------------------------------------------------------

    def change_strategy(self, strategy: RoutingStrategy, occurred_at: datetime) -> None:
        checked = enum_member(RoutingStrategy, strategy)
        if checked != self.strategy:
            self._trigger(StrategyChanged, occurred_at, strategy=checked.value)

    def set_service_level(self, service_level_s: float, occurred_at: datetime) -> None:
        seconds = checked_service_level(service_level_s)
        if seconds != self.service_level_s:
            self._trigger(ServiceLevelChanged, occurred_at, service_level_s=seconds)

    def set_overflow(self, max_wait_s: float, target: Target, occurred_at: datetime) -> None:
        """After ``max_wait_s`` of waiting a call should go to ``target`` (the
        router asks ``overdue`` and issues ``overflow``)."""
        wait = check_seconds("max_wait_s", max_wait_s, 1.0, MAX_WAIT_S)
        self._check_not_self(target.check_kind(OVERFLOW_KINDS, "overflow"))
        if (wait, target) == (self.max_wait_s, self.overflow_target):
            return
        self._trigger(
            OverflowSet,
            occurred_at,
            max_wait_s=wait,
            target_kind=target.kind.value,
            target_value=target.value,
        )

    def clear_overflow(self, occurred_at: datetime) -> None:
        if self.overflow_target is not None:
            self._trigger(OverflowCleared, occurred_at)

    def set_wrap_up(self, wrap_up_s: float, occurred_at: datetime) -> None:
        seconds = checked_wrap_up(wrap_up_s)
        if seconds != self.wrap_up_s:
            self._trigger(WrapUpChanged, occurred_at, wrap_up_s=seconds)

    def set_offer_timeout(self, offer_timeout_s: float, occurred_at: datetime) -> None:
        seconds = checked_offer_timeout(offer_timeout_s)
        if seconds != self.offer_timeout_s:
            self._trigger(OfferTimeoutChanged, occurred_at, offer_timeout_s=seconds)

    def set_music_on_hold(self, music_on_hold: str, occurred_at: datetime) -> None:
        if non_empty("music_on_hold", music_on_hold) != self.music_on_hold:
            self._trigger(MusicOnHoldChanged, occurred_at, music_on_hold=music_on_hold)

    def set_position_announcements(self, enabled: bool, occurred_at: datetime) -> None:
        if checked_flag(enabled) != self.announce_position:
            self._trigger(PositionAnnouncementsChanged, occurred_at, announce_position=enabled)

    def set_short_abandon(self, short_abandon_s: float, occurred_at: datetime) -> None:
        """Calls abandoned after waiting less than this are short abandons: counted
        apart, and out of the service level's denominator (docs/metrics.md)."""
        seconds = check_seconds("short_abandon_s", short_abandon_s, 0.0, 600.0)
        if seconds != self.short_abandon_s:
            self._trigger(ShortAbandonChanged, occurred_at, short_abandon_s=seconds)

    def set_recording(self, record_calls: bool, occurred_at: datetime) -> None:
        """Whether the B2BUA records the audio of this queue's answered calls."""
        if checked_flag(record_calls) != self.record_calls:
            self._trigger(RecordingPolicyChanged, occurred_at, record_calls=record_calls)

    def add_member(self, agent_id: UUID, penalty: int, occurred_at: datetime) -> None:
        if check_uuid("agent_id", agent_id) in self.members:
            raise InvalidValue(f"agent {agent_id} is already a member of queue {self.key}")
        if len(self.members) >= MAX_MEMBERS:
            raise InvalidValue(f"queue {self.key} already has {MAX_MEMBERS} members, the most")
        self._trigger(MemberAdded, occurred_at, agent_id=agent_id, penalty=_penalty(penalty))

    def update_member(self, agent_id: UUID, penalty: int, occurred_at: datetime) -> None:
        if self._member(agent_id).penalty != _penalty(penalty):
            self._trigger(MemberChanged, occurred_at, agent_id=agent_id, penalty=penalty)

    def remove_member(self, agent_id: UUID, occurred_at: datetime) -> None:
        self._member(agent_id)
        self._trigger(MemberRemoved, occurred_at, agent_id=agent_id)

    def require_skill(self, skill: str, min_level: int, occurred_at: datetime) -> None:
        if self.required_skills.get(check_skill(skill)) != check_level(min_level):
            check_room(self.required_skills, skill)
            self._trigger(SkillRequired, occurred_at, skill=skill, min_level=min_level)

    def drop_skill_requirement(self, skill: str, occurred_at: datetime) -> None:
        if skill not in self.required_skills:
            raise InvalidValue(f"queue {self.key} does not require skill {skill!r}")
        self._trigger(SkillRequirementDropped, occurred_at, skill=skill)

    # -- queries -----------------------------------------------------------------------

    def routing_policy(self) -> RoutingPolicy:
        return RoutingPolicy(self.strategy, dict(self.required_skills))

    # -- helpers -----------------------------------------------------------------------

    def _member(self, agent_id: UUID) -> QueueMember:
        member = self.members.get(agent_id)
        if member is None:
            raise NotAMember(f"agent {agent_id} is not a member of queue {self.key}")
        return member

    def _check_not_self(self, target: Target) -> None:
        if target.kind is TargetKind.QUEUE and target.aggregate_id == self.id:
            raise InvalidValue(f"queue {self.key} cannot send calls to itself")


def checked_service_level(seconds: float) -> float:
    return check_seconds("service_level_s", seconds, 1.0, 3600.0)


def checked_wrap_up(seconds: float) -> float:
    return check_seconds("wrap_up_s", seconds, 0.0, 3600.0)


def checked_offer_timeout(seconds: float) -> float:
    return check_seconds("offer_timeout_s", seconds, 1.0, 600.0)


def checked_flag(value: bool) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected True or False, got {value!r}")
    return value


def _penalty(penalty: int) -> int:
    return check_int("penalty", penalty, 0, MAX_PENALTY)

