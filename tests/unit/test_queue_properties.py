"""Properties of the Queue aggregate under random call flows (refused commands
caught as DomainError): every call that entered is waiting or left exactly
once, the waiting line stays in priority order with no call twice, and the
events rebuild an equal queue through the JSON-transcoded (POPO) store."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.addressing import Target
from domain.errors import DomainError
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
CALLS = [UUID(int=100 + n) for n in range(5)]
AGENTS = [UUID(int=n) for n in range(1, 4)]
ELSEWHERE = Target.number("2001")

Command = tuple[str, tuple[Any, ...]]

calls = st.sampled_from(CALLS)
agents = st.sampled_from(AGENTS)
commands: st.SearchStrategy[Command] = st.one_of(
    st.tuples(st.just("enqueue"), st.tuples(calls, st.integers(0, 2))),
    st.tuples(st.just("offer"), st.tuples(calls, agents)),
    st.tuples(st.just("miss"), st.tuples(calls, agents)),
    st.tuples(st.just("requeue"), st.tuples(calls)),
    st.tuples(st.just("answer"), st.tuples(calls, agents)),
    st.tuples(st.just("abandon"), st.tuples(calls)),
    st.tuples(st.just("overflow"), st.tuples(calls)),
    st.tuples(st.just("transfer_out"), st.tuples(calls, st.just(ELSEWHERE))),
)


def run(script: Sequence[Command]) -> Queue:
    queue = Queue.create("prop", "Prop", occurred_at=T0)
    for agent_id in AGENTS:
        queue.add_member(agent_id, 0, T0)
    queue.set_overflow(60, Target.recording("closed"), T0)
    for step, (name, args) in enumerate(script, start=1):
        with suppress(DomainError):
            getattr(queue, name)(*args, T0 + timedelta(seconds=step))
        check_state(queue)
    return queue


def check_state(queue: Queue) -> None:
    tally = queue.tally
    left = tally.answered + tally.abandoned + tally.overflowed + tally.transferred_out
    assert tally.offered == left + len(queue.calls)
    ids = [c.call_id for c in queue.calls]
    assert len(ids) == len(set(ids))
    priorities = [c.priority for c in queue.calls]
    assert priorities == sorted(priorities, reverse=True)
    assert tally.answered_within_sl <= tally.answered
    assert tally.abandoned_within_sl <= tally.abandoned


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=50))
def test_every_call_that_entered_is_waiting_or_left_exactly_once(script: list[Command]) -> None:
    run(script)


@settings(max_examples=100, deadline=None)
@given(st.lists(commands, max_size=50))
def test_replaying_the_events_rebuilds_an_equal_queue(script: list[Command]) -> None:
    queue = run(script)
    events = queue.collect_events()
    assert reduce(lambda q, e: e.mutate(q), events, None) == queue
    app: Application[UUID] = Application()
    app.save(*events)
    assert app.repository.get(queue.id) == queue
