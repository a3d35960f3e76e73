"""The Queue aggregate: configuration commands and their audit events, service
order (priority, arrival, requeue to the head of the band), and the call-flow
accounting (answered, abandoned with its wait, overflow, transfers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.addressing import Target, TargetKind
from domain.errors import IllegalTransition, InvalidValue
from domain.queue import (
    CallAlreadyQueued,
    CallNotQueued,
    NotAMember,
    Queue,
    QueuedCall,
    QueueMember,
    QueueTally,
    RoutingStrategy,
)
from domain.routing import RoutingPolicy, WaitingCall
from domain.timed import TimedAggregate

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
A1, A2, A3 = (UUID(int=n) for n in (1, 2, 3))
C1, C2, C3, C4, C5 = (UUID(int=100 + n) for n in range(1, 6))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_queue(key: str = "sales", **kwargs: object) -> Queue:
    queue = Queue.create(key, key.title(), occurred_at=T0, **kwargs)  # type: ignore[arg-type]
    for agent_id in (A1, A2, A3):
        queue.add_member(agent_id, 0, T0)
    queue.collect_events()
    return queue


def order(queue: Queue) -> list[UUID]:
    return [c.call_id for c in queue.calls]


def flow_balances(tally: QueueTally, waiting: int) -> bool:
    left = tally.answered + tally.abandoned + tally.overflowed + tally.transferred_out
    return tally.offered == left + waiting


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


# -- offers and answers -------------------------------------------------------------


def test_offer_records_the_ring_and_the_members_offer_ordinal() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.enqueue(C2, 0, at(2))
    queue.offer(C1, A2, at(3))
    queue.offer(C2, A1, at(4))
    assert queue.call(C1).offered_to == (A2,)
    assert (queue.members[A2].last_offered, queue.members[A1].last_offered) == (1, 2)
    assert queue.members[A3].last_offered is None
    assert queue.tally.agent_offers == 2


def test_offer_refuses_strangers_repeats_and_unknown_calls() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.offer(C1, A1, at(2))
    with pytest.raises(NotAMember):
        queue.offer(C1, UUID(int=77), at(3))
    with pytest.raises(IllegalTransition):
        queue.offer(C1, A1, at(3))
    with pytest.raises(CallNotQueued):
        queue.offer(C2, A1, at(3))


def test_answer_removes_the_call_and_records_its_wait() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.offer(C1, A1, at(10))
    queue.answer(C1, A1, at(13.5))
    answered = queue.collect_events()[-1]
    assert isinstance(answered, Queue.CallAnswered)
    assert (answered.agent_id, answered.wait_s, answered.service_level_s) == (A1, 12.5, 20.0)
    assert queue.calls == []
    assert (queue.tally.answered, queue.tally.answered_within_sl) == (1, 1)


def test_a_call_is_answered_at_most_once_per_visit() -> None:
    queue = new_queue(strategy=RoutingStrategy.RING_ALL)
    queue.enqueue(C1, 0, at(1))
    queue.offer(C1, A1, at(2))
    queue.offer(C1, A2, at(2))
    queue.answer(C1, A2, at(5))
    with pytest.raises(CallNotQueued):
        queue.answer(C1, A1, at(5))  # lost the ring-all race
    assert queue.tally.answered == 1


def test_answer_refuses_an_agent_the_call_was_not_offered_to() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(1))
    queue.offer(C1, A1, at(2))
    with pytest.raises(IllegalTransition):
        queue.answer(C1, A2, at(3))


def test_an_answer_after_the_service_level_threshold_is_not_within_it() -> None:
    queue = new_queue(service_level_s=10)
    queue.enqueue(C1, 0, at(0))
    queue.offer(C1, A1, at(9))
    queue.answer(C1, A1, at(10.5))
    assert (queue.tally.answered, queue.tally.answered_within_sl) == (1, 0)


# -- leaving without an answer ------------------------------------------------------


def test_abandon_records_the_wait_and_whether_it_was_within_the_threshold() -> None:
    queue = new_queue(service_level_s=20)
    queue.enqueue(C1, 0, at(0))
    queue.enqueue(C2, 0, at(0))
    queue.offer(C2, A1, at(1))  # abandoned while ringing too
    queue.abandon(C1, at(5))
    queue.abandon(C2, at(42))
    waits = [e.wait_s for e in queue.collect_events() if isinstance(e, Queue.CallAbandoned)]
    assert waits == [5.0, 42.0]
    assert (queue.tally.abandoned, queue.tally.abandoned_within_sl) == (2, 1)
    assert queue.calls == []


def test_abandon_refuses_a_call_not_in_the_queue() -> None:
    with pytest.raises(CallNotQueued):
        new_queue().abandon(C1, at(1))


def test_overdue_lists_calls_past_max_wait_and_overflow_sends_them_on() -> None:
    queue = new_queue()
    night = Target.number("+15550100")
    queue.set_overflow(60, night, at(0))
    queue.enqueue(C1, 0, at(0))
    queue.enqueue(C2, 0, at(30))
    assert queue.overdue(at(59)) == []
    assert queue.overdue(at(60)) == [C1]
    queue.overflow(C1, at(61))
    event = queue.collect_events()[-1]
    assert isinstance(event, Queue.CallOverflowed)
    assert (event.target_kind, event.target_value, event.wait_s) == ("number", "+15550100", 61)
    assert order(queue) == [C2]
    assert queue.tally.overflowed == 1


def test_overflow_needs_a_target_and_overdue_needs_a_max_wait() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(0))
    assert queue.overdue(at(10_000)) == []
    with pytest.raises(IllegalTransition):
        queue.overflow(C1, at(1))


def test_a_call_moved_between_queues_is_offered_once_to_each_and_answered_once() -> None:
    sales, support = new_queue("sales"), new_queue("support")
    sales.enqueue(C1, 0, at(0))
    sales.transfer_out(C1, Target.queue(support.id), at(30))
    support.enqueue(C1, 0, at(30), transferred_from=sales.id)
    support.offer(C1, A1, at(31))
    support.answer(C1, A1, at(35))
    assert sales.tally == QueueTally(offered=1, transferred_out=1)
    assert support.tally == QueueTally(
        offered=1, transferred_in=1, answered=1, answered_within_sl=1, agent_offers=1
    )
    answered = support.collect_events()[-1]
    assert isinstance(answered, Queue.CallAnswered)
    assert answered.wait_s == 5.0  # the wait in this queue
    assert flow_balances(sales.tally, 0)
    assert flow_balances(support.tally, 0)


def test_transfer_out_refuses_itself_and_recordings() -> None:
    queue = new_queue()
    queue.enqueue(C1, 0, at(0))
    with pytest.raises(InvalidValue):
        queue.transfer_out(C1, Target.queue(queue.id), at(1))
    with pytest.raises(InvalidValue):
        queue.transfer_out(C1, Target.recording("closed"), at(1))
    queue.transfer_out(C1, Target.number("2001"), at(1))
    assert queue.calls == []


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
