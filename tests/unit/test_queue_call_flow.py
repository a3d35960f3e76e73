"""The Queue aggregate's call-flow accounting: offers, missed rings and answers
(each member's offer ordinal, one answer per visit, within the service level or
not), and the calls that leave without an answer: abandoned with their wait,
overflowed past the maximum wait, transferred out to another queue or elsewhere."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.addressing import Target
from domain.errors import IllegalTransition, InvalidValue
from domain.queue import CallNotQueued, NotAMember, Queue, QueueTally, RoutingStrategy
from tests.unit.queue_support import A1, A2, A3, C1, C2, at, flow_balances, new_queue, order

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


def test_a_missed_ring_of_several_leaves_the_call_ringing_the_others() -> None:
    queue = new_queue(strategy=RoutingStrategy.RING_ALL)
    queue.enqueue(C1, 0, at(1))
    queue.offer(C1, A1, at(2))
    queue.offer(C1, A2, at(2))
    queue.miss(C1, A1, at(5))
    assert queue.call(C1).offered_to == (A2,)
    assert queue.waiting_calls() == []  # still ringing: not offered again meanwhile
    assert isinstance(queue.collect_events()[-1], Queue.CallOfferMissed)
    with pytest.raises(IllegalTransition, match="not ringing agent"):
        queue.miss(C1, A1, at(6))
    with pytest.raises(IllegalTransition, match="requeue it"):
        queue.miss(C1, A2, at(6))  # the last ring missed is a requeue
    queue.requeue(C1, at(6))
    assert (queue.call(C1).offered_to, queue.tally.requeued) == ((), 1)


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
