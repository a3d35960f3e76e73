"""The Queue aggregate: configuration commands and their audit events, service
order (priority, arrival, requeue to the head of the band in arrival order), the figures (service
level, abandon rate, waits) and the rebuild from stored events. The call-flow
accounting (answered, abandoned, overflow, transfers) is in test_queue_call_flow.py."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.addressing import Target, TargetKind
from domain.errors import IllegalTransition, InvalidValue
from domain.queue import (
    CallAlreadyQueued,
    NotAMember,
    Queue,
    QueuedCall,
    QueueMember,
    QueueTally,
    RoutingStrategy,
)
from domain.routing import RoutingPolicy, WaitingCall
from domain.timed import TimedAggregate
from tests.unit.queue_support import (
    A1,
    A2,
    A3,
    C1,
    C2,
    C3,
    C4,
    C5,
    T0,
    at,
    flow_balances,
    new_queue,
    order,
)

# -- configuration ------------------------------------------------------------------


def test_create_sets_defaults_and_derives_the_id_from_the_key() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    (created,) = queue.collect_events()
    assert isinstance(created, Queue.Created)
    assert queue.id == Queue.id_for("sales")
    assert queue.strategy is RoutingStrategy.LONGEST_IDLE
    assert (queue.service_level_s, queue.wrap_up_s, queue.offer_timeout_s) == (20.0, 0.0, 15.0)
    assert (queue.music_on_hold, queue.announce_position) == ("default", False)
    assert (queue.max_wait_s, queue.overflow_target) == (None, None)
    assert queue.members == {}
    assert queue.calls == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "random"},
        {"service_level_s": 0},
        {"wrap_up_s": -1},
        {"offer_timeout_s": 0},
        {"music_on_hold": ""},
        {"announce_position": "yes"},
    ],
)
def test_create_refuses_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidValue):
        Queue.create("sales", "Sales", occurred_at=T0, **kwargs)  # type: ignore[arg-type]


SETTINGS = [
    ("change_strategy", RoutingStrategy.RING_ALL, "strategy", Queue.StrategyChanged),
    ("set_service_level", 30, "service_level_s", Queue.ServiceLevelChanged),
    ("set_wrap_up", 45, "wrap_up_s", Queue.WrapUpChanged),
    ("set_offer_timeout", 25, "offer_timeout_s", Queue.OfferTimeoutChanged),
    ("set_music_on_hold", "jazz", "music_on_hold", Queue.MusicOnHoldChanged),
    ("set_position_announcements", True, "announce_position", Queue.PositionAnnouncementsChanged),
]


@pytest.mark.parametrize(("command", "value", "attribute", "event_class"), SETTINGS)
def test_a_setting_change_is_one_event_and_the_same_value_is_none(
    command: str, value: object, attribute: str, event_class: type
) -> None:
    queue = new_queue()
    getattr(queue, command)(value, at(1))
    getattr(queue, command)(value, at(2))
    (event,) = queue.collect_events()
    assert isinstance(event, event_class)
    assert isinstance(event, TimedAggregate.Event)
    assert event.occurred_at == at(1)
    assert getattr(queue, attribute) == value


def test_set_overflow_and_clear_overflow() -> None:
    queue = new_queue()
    night = Target.queue(Queue.id_for("night"))
    queue.set_overflow(120, night, at(1))
    queue.set_overflow(120, night, at(2))  # no change
    assert (queue.max_wait_s, queue.overflow_target) == (120.0, night)
    queue.clear_overflow(at(3))
    queue.clear_overflow(at(4))  # nothing to clear
    assert [type(e) for e in queue.collect_events()] == [Queue.OverflowSet, Queue.OverflowCleared]
    assert (queue.max_wait_s, queue.overflow_target) == (None, None)


@pytest.mark.parametrize(
    "target",
    [Target.queue(Queue.id_for("sales")), Target.ivr(Queue.id_for("x")), Target.hangup()],
)
def test_overflow_refuses_itself_and_kinds_other_than_queue_number_recording(
    target: Target,
) -> None:
    with pytest.raises(InvalidValue):
        new_queue().set_overflow(60, target, at(1))


def test_members_are_added_updated_and_removed() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    queue.add_member(A1, 0, at(1))
    queue.add_member(A2, 5, at(2))
    queue.update_member(A2, 1, at(3))
    queue.update_member(A2, 1, at(4))  # no change
    queue.remove_member(A1, at(5))
    assert queue.members == {A2: QueueMember(penalty=1)}
    assert [type(e) for e in queue.collect_events()][1:] == [
        Queue.MemberAdded,
        Queue.MemberAdded,
        Queue.MemberChanged,
        Queue.MemberRemoved,
    ]


def test_member_commands_refuse_duplicates_strangers_and_bad_penalties() -> None:
    queue = new_queue()
    with pytest.raises(InvalidValue):
        queue.add_member(A1, 0, at(1))
    with pytest.raises(NotAMember):
        queue.update_member(UUID(int=77), 0, at(1))
    with pytest.raises(NotAMember):
        queue.remove_member(UUID(int=77), at(1))
    with pytest.raises(InvalidValue):
        queue.add_member(UUID(int=77), -1, at(1))
    assert queue.collect_events() == []


def test_required_skills_feed_the_routing_policy() -> None:
    queue = new_queue(strategy=RoutingStrategy.SKILLS_BASED)
    queue.require_skill("spanish", 50, at(1))
    queue.require_skill("billing", 10, at(2))
    queue.require_skill("billing", 10, at(3))  # no change
    queue.drop_skill_requirement("billing", at(4))
    assert len(queue.collect_events()) == 3
    assert queue.routing_policy() == RoutingPolicy(RoutingStrategy.SKILLS_BASED, {"spanish": 50})
    with pytest.raises(InvalidValue):
        queue.drop_skill_requirement("billing", at(5))


# -- service order ------------------------------------------------------------------


def test_calls_wait_in_priority_then_arrival_order() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 5, at(2))
    queue.enqueue(C3, 0, at(3))
    queue.enqueue(C4, 5, at(4))
    assert order(queue) == [C2, C4, C1, C3]
    assert [queue.position(c) for c in (C2, C4, C1, C3)] == [1, 2, 3, 4]


def test_a_requeued_call_goes_back_to_the_head_of_its_priority_band() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 0, at(2))
    queue.enqueue(C3, 5, at(3))
    queue.enqueue(C4, 0, at(4))
    queue.offer(C4, A1, at(5))
    queue.requeue(C4, at(20))
    assert order(queue) == [C3, C4, C1, C2]
    requeued = queue.call(C4)
    assert (requeued.offered_to, requeued.enqueued_at) == ((), at(4))  # its wait goes on
    assert queue.tally.requeued == 1


def test_calls_requeued_together_keep_their_arrival_order_at_the_head_of_their_band() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 0, at(2))
    queue.enqueue(C3, 0, at(3))
    queue.offer(C1, A1, at(4))
    queue.offer(C2, A2, at(4))
    queue.offer(C3, A3, at(4))
    queue.requeue(C3, at(10))  # rang out first: it goes back behind C1 and C2 (ringing)
    queue.requeue(C1, at(20))
    queue.requeue(C2, at(20))  # behind C1, which rang too and arrived first
    assert order(queue) == [C1, C2, C3]


def test_a_requeued_call_goes_ahead_of_the_calls_that_never_rang() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 0, at(2))
    queue.enqueue(C3, 0, at(3))
    queue.offer(C1, A1, at(4))
    queue.requeue(C1, at(10))
    queue.offer(C3, A2, at(11))  # C2 passed over (say, for its skills)
    queue.requeue(C3, at(20))
    assert order(queue) == [C1, C3, C2]  # behind C1 (rang, earlier), ahead of C2 (never rang)
    requeues = [e for e in queue.collect_events() if isinstance(e, Queue.CallRequeued)]
    assert [e.position for e in requeues] == [1, 2]  # the place taken, for the projections


def test_requeue_refuses_a_call_that_is_not_ringing() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    with pytest.raises(IllegalTransition):
        queue.requeue(C1, at(2))


def test_waiting_calls_leave_out_calls_ringing_an_agent() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 0, at(2))
    queue.offer(C1, A1, at(3))
    assert queue.waiting_calls() == [WaitingCall(C2, 0, at(2))]
    assert queue.position(C2) == 2


def test_enqueue_refuses_a_call_already_waiting_and_a_bad_priority() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    with pytest.raises(CallAlreadyQueued):
        queue.enqueue(C1, 0, at(2))
    with pytest.raises(InvalidValue):
        queue.enqueue(C2, 100, at(2))
    with pytest.raises(InvalidValue):
        queue.enqueue(C2, 0, at(2), transferred_from=queue.id)


# -- figures --------------------------------------------------------------------------


def test_service_level_excludes_short_abandons_and_counts_late_ones() -> None:
    tally = QueueTally(answered=8, answered_within_sl=6, abandoned=3, abandoned_within_sl=1)
    assert tally.service_level() == 6 / 10
    assert tally.abandon_rate() == 3 / 11
    assert QueueTally().service_level() is None
    assert QueueTally().abandon_rate() is None


def test_oldest_wait_and_a_call_wait_never_go_negative() -> None:
    queue = new_queue()
    assert queue.oldest_wait_s(at(5)) is None
    queue.enqueue(C1, 0, at(10))
    queue.enqueue(C2, 0, at(20))
    assert queue.oldest_wait_s(at(25)) == 15.0
    assert QueuedCall(C1, 0, at(10)).wait_s(at(9)) == 0.0


def test_stored_events_rebuild_an_equal_queue() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0, announce_position=True)
    queue.add_member(A1, 0, at(1))
    queue.add_member(A2, 2, at(1))
    queue.set_overflow(90, Target.recording("closed/night"), at(2))
    queue.require_skill("spanish", 20, at(2))
    for n, call_id in enumerate((C1, C2, C3, C4, C5)):
        queue.enqueue(call_id, n % 2, at(3 + n), transferred_from=UUID(int=9) if n == 4 else None)
    queue.offer(C1, A1, at(9))
    queue.answer(C1, A1, at(12))
    queue.offer(C2, A2, at(13))
    queue.requeue(C2, at(28))
    queue.abandon(C3, at(40))
    queue.overflow(C4, at(100))
    queue.offer(C5, A1, at(101))
    app: Application[UUID] = Application()
    app.save(queue)
    stored: Queue = app.repository.get(queue.id)
    assert stored == queue
    assert stored.overflow_target == Target(TargetKind.RECORDING, "closed/night")
    assert flow_balances(stored.tally, len(stored.calls))
