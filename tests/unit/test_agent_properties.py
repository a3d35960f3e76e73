"""Properties of the Agent aggregate under random command sequences: no
sequence (refused commands caught as DomainError) ever puts an agent on two
calls, or reserved/on a call without a call id, and the events rebuild exactly
the same state, directly and through the JSON-transcoded (POPO) store."""

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

from domain.agent import Agent, AgentState
from domain.errors import DomainError

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
CALLS = [UUID(int=n) for n in range(1, 4)]
QUEUE = UUID(int=99)
THRESHOLD = 3

Command = tuple[str, tuple[Any, ...]]

calls = st.sampled_from(CALLS)
commands: st.SearchStrategy[Command] = st.one_of(
    st.tuples(st.just("login"), st.just(("sip:1001@pbx.example.com",))),
    st.tuples(st.just("logout"), st.just(())),
    st.tuples(st.just("pause"), st.tuples(st.sampled_from(["lunch", "break"]))),
    st.tuples(st.just("resume"), st.just(())),
    st.tuples(st.just("reserve"), st.tuples(calls, st.sampled_from([QUEUE, None]), st.just(15))),
    st.tuples(st.just("accept_offer"), st.tuples(calls)),
    st.tuples(st.just("miss_offer"), st.tuples(calls)),
    st.tuples(st.just("cancel_offer"), st.tuples(calls)),
    st.tuples(st.just("end_call"), st.tuples(calls, st.sampled_from([0, 30]))),
    st.tuples(st.just("finish_wrap_up"), st.just(())),
    st.tuples(st.just("set_skill"), st.tuples(st.sampled_from(["en", "es"]), st.integers(1, 3))),
    st.tuples(st.just("remove_skill"), st.tuples(st.sampled_from(["en", "es"]))),
)


def run(script: Sequence[Command]) -> Agent:
    agent = Agent.create("prop", "Prop", {"en": 1}, occurred_at=T0, auto_pause_after=THRESHOLD)
    for step, (name, args) in enumerate(script, start=1):
        with suppress(DomainError):
            getattr(agent, name)(*args, T0 + timedelta(seconds=step))
        check_state(agent)
    return agent


def check_state(agent: Agent) -> None:
    with_call = agent.state in {AgentState.RESERVED, AgentState.ON_CALL}
    assert (agent.current_call_id is not None) == with_call
    assert (agent.offer_deadline is not None) == (agent.state is AgentState.RESERVED)
    assert (agent.wrap_up_until is not None) == (agent.state is AgentState.WRAP_UP)
    assert (agent.pause_reason is not None) == (agent.state is AgentState.PAUSED)
    assert (agent.device_uri is None) == (agent.state is AgentState.LOGGED_OUT)
    assert 0 <= agent.consecutive_misses < THRESHOLD


def check_one_call_at_a_time(events: Sequence[object]) -> None:
    """Every offer is closed (missed, cancelled or its call ended) before the next."""
    current: UUID | None = None
    for event in events:
        if isinstance(event, Agent.Reserved):
            assert current is None, "reserved while already holding a call"
            current = event.call_id
        elif isinstance(event, Agent.OfferAccepted):
            assert event.call_id == current
        elif isinstance(event, Agent.OfferMissed | Agent.OfferCancelled | Agent.CallEnded):
            assert event.call_id == current
            current = None


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, max_size=40))
def test_no_command_sequence_puts_an_agent_on_two_calls(script: list[Command]) -> None:
    agent = run(script)
    check_one_call_at_a_time(agent.collect_events())


@settings(max_examples=150, deadline=None)
@given(st.lists(commands, max_size=40))
def test_replaying_the_events_rebuilds_an_equal_agent(script: list[Command]) -> None:
    agent = run(script)
    events = agent.collect_events()
    rebuilt = reduce(lambda a, e: e.mutate(a), events, None)
    assert rebuilt == agent

    app: Application[UUID] = Application()
    app.save(*events)
    assert app.repository.get(agent.id) == agent
