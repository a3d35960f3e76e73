"""The Queue aggregate: a call queue's configuration and the calls waiting in it.

Configuration (every change is an event, the audit trail): routing strategy,
service-level threshold T, max wait and overflow target, after-call wrap-up
length, offer (ring) timeout, music on hold, position announcements, whether
its calls are recorded, members (agent id -> penalty) and required skills (for
skills-based routing).
Setting a value to what it already is emits nothing; adding a member twice or
removing an absent one raises.

Call flow, one visit of a call to this queue::

    enqueue --> waiting --offer(agent)--> ringing --answer(agent)--> gone (answered)
                   ^                         |
                   +------- requeue ---------+   (every ring missed: back to the
                                                  head of its priority band)
    waiting or ringing --abandon | overflow | transfer_out--> gone

Calls are served by priority (higher first), then arrival; a requeued call goes
to the head of its band. A visit is answered at most once: the answer removes
the call, so a second answer (a ring-all race, a retried command) raises
``CallNotQueued``. When a call leaves while ringing, the router must also
cancel the agents' reservations (``Agent.cancel_offer``): the queue only drops
its record of the rings. See ``QueueTally`` for the accounting.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.addressing import (
    DEFAULT_TENANT,
    Target,
    TargetKind,
    check_tenant,
    config_id,
)
from domain.errors import IllegalTransition, InvalidValue
from domain.limits import check_int, check_seconds, check_uuid
from domain.queue_values import QueuedCall, QueueMember, QueueTally, place
from domain.routing import RoutingPolicy, RoutingStrategy, WaitingCall
from domain.skills import check_level, check_room, check_skill
from domain.timed import TimedAggregate
from domain.values import enum_member, non_empty, utc_instant

__all__ = [
    "CallAlreadyQueued",
    "CallNotQueued",
    "NotAMember",
    "Queue",
    "QueueMember",
    "QueueTally",
    "QueuedCall",
    "RoutingStrategy",
]

OVERFLOW_KINDS = frozenset({TargetKind.QUEUE, TargetKind.NUMBER, TargetKind.RECORDING})
TRANSFER_KINDS = frozenset({TargetKind.QUEUE, TargetKind.NUMBER, TargetKind.IVR})
MAX_PRIORITY = 99
MAX_PENALTY = 100
# Members of one queue: every offer ranks them all, so the set stays bounded.
MAX_MEMBERS = 1000
MAX_WAIT_S = 86_400.0
DEFAULT_SHORT_ABANDON_S = 5.0


class CallNotQueued(IllegalTransition):
    """The command names a call that is not in this queue."""


class CallAlreadyQueued(IllegalTransition):
    """The call is already waiting in this queue."""


class NotAMember(InvalidValue):
    """The command names an agent that is not a member of this queue."""


class Queue(TimedAggregate):
    # -- configuration events ------------------------------------------------------

    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        key: str
        name: str
        strategy: str
        service_level_s: float
        wrap_up_s: float
        offer_timeout_s: float
        music_on_hold: str
        announce_position: bool
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class StrategyChanged(TimedAggregate.Event):
        class_version = 1
        strategy: str

        def apply(self, queue: Queue) -> None:
            queue.strategy = RoutingStrategy(self.strategy)

    class ServiceLevelChanged(TimedAggregate.Event):
        class_version = 1
        service_level_s: float

        def apply(self, queue: Queue) -> None:
            queue.service_level_s = self.service_level_s

    class OverflowSet(TimedAggregate.Event):
        class_version = 1
        max_wait_s: float
        target_kind: str
        target_value: str | None

        def apply(self, queue: Queue) -> None:
            queue.max_wait_s = self.max_wait_s
            queue.overflow_target = Target(TargetKind(self.target_kind), self.target_value)

    class OverflowCleared(TimedAggregate.Event):
        class_version = 1

        def apply(self, queue: Queue) -> None:
            queue.max_wait_s = None
            queue.overflow_target = None

    class WrapUpChanged(TimedAggregate.Event):
        class_version = 1
        wrap_up_s: float

        def apply(self, queue: Queue) -> None:
            queue.wrap_up_s = self.wrap_up_s

    class OfferTimeoutChanged(TimedAggregate.Event):
        class_version = 1
        offer_timeout_s: float

        def apply(self, queue: Queue) -> None:
            queue.offer_timeout_s = self.offer_timeout_s

    class MusicOnHoldChanged(TimedAggregate.Event):
        class_version = 1
        music_on_hold: str

        def apply(self, queue: Queue) -> None:
            queue.music_on_hold = self.music_on_hold

    class PositionAnnouncementsChanged(TimedAggregate.Event):
        class_version = 1
        announce_position: bool

        def apply(self, queue: Queue) -> None:
            queue.announce_position = self.announce_position

    class ShortAbandonChanged(TimedAggregate.Event):
        class_version = 1
        short_abandon_s: float

        def apply(self, queue: Queue) -> None:
            queue.short_abandon_s = self.short_abandon_s

    class RecordingPolicyChanged(TimedAggregate.Event):
        class_version = 1
        record_calls: bool

        def apply(self, queue: Queue) -> None:
            queue.record_calls = self.record_calls

    class MemberAdded(TimedAggregate.Event):
        class_version = 1
        agent_id: UUID
        penalty: int

        def apply(self, queue: Queue) -> None:
            queue.members[self.agent_id] = QueueMember(self.penalty)

    class MemberChanged(TimedAggregate.Event):
        class_version = 1
        agent_id: UUID
        penalty: int

        def apply(self, queue: Queue) -> None:
            member = queue.members[self.agent_id]
            queue.members[self.agent_id] = replace(member, penalty=self.penalty)

    class MemberRemoved(TimedAggregate.Event):
        class_version = 1
        agent_id: UUID

        def apply(self, queue: Queue) -> None:
            del queue.members[self.agent_id]

    class SkillRequired(TimedAggregate.Event):
        class_version = 1
        skill: str
        min_level: int

        def apply(self, queue: Queue) -> None:
            queue.required_skills[self.skill] = self.min_level

    class SkillRequirementDropped(TimedAggregate.Event):
        class_version = 1
        skill: str

        def apply(self, queue: Queue) -> None:
            del queue.required_skills[self.skill]

    # -- call flow events ----------------------------------------------------------

    class CallEnqueued(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        priority: int
        transferred_from: UUID | None

        def apply(self, queue: Queue) -> None:
            call = QueuedCall(self.call_id, self.priority, self.occurred_at, self.transferred_from)
            queue.calls = place(queue.calls, call, at_head=False)
            queue.tally.offered += 1
            queue.tally.transferred_in += self.transferred_from is not None

    class CallOffered(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        agent_id: UUID

        def apply(self, queue: Queue) -> None:
            call = queue.call(self.call_id)
            queue._swap_call(call, replace(call, offered_to=(*call.offered_to, self.agent_id)))
            queue.tally.agent_offers += 1
            member = queue.members[self.agent_id]
            ordinal = queue.tally.agent_offers
            queue.members[self.agent_id] = replace(member, last_offered=ordinal)

    class CallRequeued(TimedAggregate.Event):
        class_version = 1
        call_id: UUID

        def apply(self, queue: Queue) -> None:
            call = replace(queue._remove_call(self.call_id), offered_to=())
            queue.calls = place(queue.calls, call, at_head=True)
            queue.tally.requeued += 1

    class CallAnswered(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        agent_id: UUID
        wait_s: float
        service_level_s: float  # the threshold when it happened, for faithful history

        def apply(self, queue: Queue) -> None:
            queue._remove_call(self.call_id)
            queue.tally.answered += 1
            queue.tally.answered_within_sl += self.wait_s <= self.service_level_s

    class CallAbandoned(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        wait_s: float
        service_level_s: float

        def apply(self, queue: Queue) -> None:
            queue._remove_call(self.call_id)
            queue.tally.abandoned += 1
            queue.tally.abandoned_within_sl += self.wait_s <= self.service_level_s

    class CallOverflowed(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        wait_s: float
        target_kind: str
        target_value: str | None

        def apply(self, queue: Queue) -> None:
            queue._remove_call(self.call_id)
            queue.tally.overflowed += 1

    class CallTransferredOut(TimedAggregate.Event):
        class_version = 1
        call_id: UUID
        wait_s: float
        target_kind: str
        target_value: str | None

        def apply(self, queue: Queue) -> None:
            queue._remove_call(self.call_id)
            queue.tally.transferred_out += 1

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        key: str,
        name: str,
        strategy: str,
        service_level_s: float,
        wrap_up_s: float,
        offer_timeout_s: float,
        music_on_hold: str,
        announce_position: bool,
        occurred_at: datetime,
    ) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
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
        self.calls: list[QueuedCall] = []
        self.tally = QueueTally()
        self.created_at = occurred_at

    # -- configuration commands ----------------------------------------------------

    @staticmethod
    def id_for(key: str, tenant: str = DEFAULT_TENANT) -> UUID:
        return config_id("queue", key, tenant)

    @classmethod
    def create(
        cls,
        key: str,
        name: str,
        strategy: RoutingStrategy = RoutingStrategy.LONGEST_IDLE,
        *,
        occurred_at: datetime,
        service_level_s: float = 20.0,
        wrap_up_s: float = 0.0,
        offer_timeout_s: float = 15.0,
        music_on_hold: str = "default",
        announce_position: bool = False,
        tenant: str = DEFAULT_TENANT,
    ) -> Queue:
        return cls._create(
            cls.Created,
            id=cls.id_for(key, tenant),
            tenant=check_tenant(tenant),
            key=key,
            name=non_empty("name", name),
            strategy=enum_member(RoutingStrategy, strategy).value,
            service_level_s=_threshold(service_level_s),
            wrap_up_s=_wrap_up(wrap_up_s),
            offer_timeout_s=_offer_timeout(offer_timeout_s),
            music_on_hold=non_empty("music_on_hold", music_on_hold),
            announce_position=_flag(announce_position),
            occurred_at=utc_instant(occurred_at),
        )

    def change_strategy(self, strategy: RoutingStrategy, occurred_at: datetime) -> None:
        checked = enum_member(RoutingStrategy, strategy)
        if checked != self.strategy:
            self._trigger(self.StrategyChanged, occurred_at, strategy=checked.value)

    def set_service_level(self, service_level_s: float, occurred_at: datetime) -> None:
        seconds = _threshold(service_level_s)
        if seconds != self.service_level_s:
            self._trigger(self.ServiceLevelChanged, occurred_at, service_level_s=seconds)

    def set_overflow(self, max_wait_s: float, target: Target, occurred_at: datetime) -> None:
        """After ``max_wait_s`` of waiting a call should go to ``target`` (the
        router asks ``overdue`` and issues ``overflow``)."""
        wait = check_seconds("max_wait_s", max_wait_s, 1.0, MAX_WAIT_S)
        self._check_not_self(target.check_kind(OVERFLOW_KINDS, "overflow"))
        if (wait, target) == (self.max_wait_s, self.overflow_target):
            return
        self._trigger(
            self.OverflowSet,
            occurred_at,
            max_wait_s=wait,
            target_kind=target.kind.value,
            target_value=target.value,
        )

    def clear_overflow(self, occurred_at: datetime) -> None:
        if self.overflow_target is not None:
            self._trigger(self.OverflowCleared, occurred_at)

    def set_wrap_up(self, wrap_up_s: float, occurred_at: datetime) -> None:
        seconds = _wrap_up(wrap_up_s)
        if seconds != self.wrap_up_s:
            self._trigger(self.WrapUpChanged, occurred_at, wrap_up_s=seconds)

    def set_offer_timeout(self, offer_timeout_s: float, occurred_at: datetime) -> None:
        seconds = _offer_timeout(offer_timeout_s)
        if seconds != self.offer_timeout_s:
            self._trigger(self.OfferTimeoutChanged, occurred_at, offer_timeout_s=seconds)

    def set_music_on_hold(self, music_on_hold: str, occurred_at: datetime) -> None:
        if non_empty("music_on_hold", music_on_hold) != self.music_on_hold:
            self._trigger(self.MusicOnHoldChanged, occurred_at, music_on_hold=music_on_hold)

    def set_position_announcements(self, enabled: bool, occurred_at: datetime) -> None:
        if _flag(enabled) != self.announce_position:
            self._trigger(self.PositionAnnouncementsChanged, occurred_at, announce_position=enabled)

    def set_short_abandon(self, short_abandon_s: float, occurred_at: datetime) -> None:
        """Calls abandoned after waiting less than this are short abandons: counted
        apart, and out of the service level's denominator (docs/metrics.md)."""
        seconds = check_seconds("short_abandon_s", short_abandon_s, 0.0, 600.0)
        if seconds != self.short_abandon_s:
            self._trigger(self.ShortAbandonChanged, occurred_at, short_abandon_s=seconds)

    def set_recording(self, record_calls: bool, occurred_at: datetime) -> None:
        """Whether the B2BUA records the audio of this queue's answered calls."""
        if _flag(record_calls) != self.record_calls:
            self._trigger(self.RecordingPolicyChanged, occurred_at, record_calls=record_calls)

    def add_member(self, agent_id: UUID, penalty: int, occurred_at: datetime) -> None:
        if check_uuid("agent_id", agent_id) in self.members:
            raise InvalidValue(f"agent {agent_id} is already a member of queue {self.key}")
        if len(self.members) >= MAX_MEMBERS:
            raise InvalidValue(f"queue {self.key} already has {MAX_MEMBERS} members, the most")
        self._trigger(self.MemberAdded, occurred_at, agent_id=agent_id, penalty=_penalty(penalty))

    def update_member(self, agent_id: UUID, penalty: int, occurred_at: datetime) -> None:
        if self._member(agent_id).penalty != _penalty(penalty):
            self._trigger(self.MemberChanged, occurred_at, agent_id=agent_id, penalty=penalty)

    def remove_member(self, agent_id: UUID, occurred_at: datetime) -> None:
        self._member(agent_id)
        self._trigger(self.MemberRemoved, occurred_at, agent_id=agent_id)

    def require_skill(self, skill: str, min_level: int, occurred_at: datetime) -> None:
        if self.required_skills.get(check_skill(skill)) != check_level(min_level):
            check_room(self.required_skills, skill)
            self._trigger(self.SkillRequired, occurred_at, skill=skill, min_level=min_level)

    def drop_skill_requirement(self, skill: str, occurred_at: datetime) -> None:
        if skill not in self.required_skills:
            raise InvalidValue(f"queue {self.key} does not require skill {skill!r}")
        self._trigger(self.SkillRequirementDropped, occurred_at, skill=skill)

    # -- call flow commands --------------------------------------------------------

    def enqueue(
        self,
        call_id: UUID,
        priority: int,
        occurred_at: datetime,
        transferred_from: UUID | None = None,
    ) -> None:
        """The call starts waiting; ``transferred_from``: the queue it was moved from."""
        if self._find(check_uuid("call_id", call_id)) is not None:
            raise CallAlreadyQueued(f"call {call_id} is already in queue {self.key}")
        if transferred_from == self.id:
            raise InvalidValue(f"queue {self.key} cannot transfer a call to itself")
        self._trigger(
            self.CallEnqueued,
            occurred_at,
            call_id=call_id,
            priority=check_int("priority", priority, 0, MAX_PRIORITY),
            transferred_from=None
            if transferred_from is None
            else check_uuid("transferred_from", transferred_from),
        )

    def offer(self, call_id: UUID, agent_id: UUID, occurred_at: datetime) -> None:
        """The call rings ``agent_id`` (reserve the agent first: that is the lock)."""
        call = self.call(call_id)
        self._member(agent_id)
        if agent_id in call.offered_to:
            raise IllegalTransition(f"call {call_id} is already ringing agent {agent_id}")
        self._trigger(self.CallOffered, occurred_at, call_id=call_id, agent_id=agent_id)

    def requeue(self, call_id: UUID, occurred_at: datetime) -> None:
        """Every ring of the call ended unanswered: back to the head of its band."""
        if not self.call(call_id).ringing:
            raise IllegalTransition(f"call {call_id} is not ringing any agent")
        self._trigger(self.CallRequeued, occurred_at, call_id=call_id)

    def answer(self, call_id: UUID, agent_id: UUID, occurred_at: datetime) -> None:
        call = self.call(call_id)
        if agent_id not in call.offered_to:
            raise IllegalTransition(f"call {call_id} was not offered to agent {agent_id}")
        self._trigger(
            self.CallAnswered,
            occurred_at,
            call_id=call_id,
            agent_id=agent_id,
            wait_s=call.wait_s(utc_instant(occurred_at)),
            service_level_s=self.service_level_s,
        )

    def abandon(self, call_id: UUID, occurred_at: datetime) -> None:
        """The caller hung up while waiting or ringing."""
        wait_s = self.call(call_id).wait_s(utc_instant(occurred_at))
        self._trigger(
            self.CallAbandoned,
            occurred_at,
            call_id=call_id,
            wait_s=wait_s,
            service_level_s=self.service_level_s,
        )

    def overflow(self, call_id: UUID, occurred_at: datetime) -> None:
        """The call leaves for the configured overflow target (usually: max wait reached)."""
        if self.overflow_target is None:
            raise IllegalTransition(f"queue {self.key} has no overflow target")
        self._leave(self.CallOverflowed, call_id, self.overflow_target, occurred_at)

    def transfer_out(self, call_id: UUID, to: Target, occurred_at: datetime) -> None:
        """The waiting call is moved elsewhere (a queue ``to`` must then enqueue it
        with ``transferred_from`` = this queue's id)."""
        self._check_not_self(to.check_kind(TRANSFER_KINDS, "transfer"))
        self._leave(self.CallTransferredOut, call_id, to, occurred_at)

    # -- queries -------------------------------------------------------------------

    def call(self, call_id: UUID) -> QueuedCall:
        call = self._find(call_id)
        if call is None:
            raise CallNotQueued(f"call {call_id} is not in queue {self.key}")
        return call

    def position(self, call_id: UUID) -> int:
        """1-based place in service order, counting calls ringing an agent."""
        return self.calls.index(self.call(call_id)) + 1

    def waiting_calls(self) -> list[WaitingCall]:
        """Calls not ringing anyone, in service order: routing's input."""
        return [
            WaitingCall(c.call_id, c.priority, c.enqueued_at) for c in self.calls if not c.ringing
        ]

    def routing_policy(self) -> RoutingPolicy:
        return RoutingPolicy(self.strategy, dict(self.required_skills))

    def overdue(self, now: datetime) -> list[UUID]:
        """Calls that have waited ``max_wait_s`` or more (none without an overflow)."""
        limit = self.max_wait_s
        if limit is None:
            return []
        return [c.call_id for c in self.calls if c.wait_s(utc_instant(now)) >= limit]

    def oldest_wait_s(self, now: datetime) -> float | None:
        waits = [c.wait_s(utc_instant(now)) for c in self.calls]
        return max(waits) if waits else None

    # -- state changes, used only by the events' apply methods ---------------------

    def _remove_call(self, call_id: UUID) -> QueuedCall:
        call = self.call(call_id)
        self.calls = [c for c in self.calls if c.call_id != call_id]
        return call

    def _swap_call(self, old: QueuedCall, new: QueuedCall) -> None:
        self.calls = [new if c is old else c for c in self.calls]

    # -- helpers -------------------------------------------------------------------

    def _find(self, call_id: UUID) -> QueuedCall | None:
        return next((c for c in self.calls if c.call_id == call_id), None)

    def _member(self, agent_id: UUID) -> QueueMember:
        member = self.members.get(agent_id)
        if member is None:
            raise NotAMember(f"agent {agent_id} is not a member of queue {self.key}")
        return member

    def _check_not_self(self, target: Target) -> None:
        if target.kind is TargetKind.QUEUE and target.aggregate_id == self.id:
            raise InvalidValue(f"queue {self.key} cannot send calls to itself")

    def _leave(
        self,
        event_class: type[TimedAggregate.Event],
        call_id: UUID,
        to: Target,
        occurred_at: datetime,
    ) -> None:
        self._trigger(
            event_class,
            occurred_at,
            call_id=call_id,
            wait_s=self.call(call_id).wait_s(utc_instant(occurred_at)),
            target_kind=to.kind.value,
            target_value=to.value,
        )


def _threshold(seconds: float) -> float:
    return check_seconds("service_level_s", seconds, 1.0, 3600.0)


def _wrap_up(seconds: float) -> float:
    return check_seconds("wrap_up_s", seconds, 0.0, 3600.0)


def _offer_timeout(seconds: float) -> float:
    return check_seconds("offer_timeout_s", seconds, 1.0, 600.0)


def _penalty(penalty: int) -> int:
    return check_int("penalty", penalty, 0, MAX_PENALTY)


def _flag(value: bool) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected True or False, got {value!r}")
    return value
