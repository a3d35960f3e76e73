"""What the Agent aggregate's unit tests (test_agent.py, test_agent_offers.py)
share: a fixed clock, the call and queue an agent is offered, and an agent
brought to any state by the shortest path of legal commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.agent import Agent, AgentState

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
CALL = UUID("00000000-0000-4000-8000-00000000c411")
OTHER_CALL = UUID("00000000-0000-4000-8000-0000000000ff")
QUEUE = UUID("00000000-0000-4000-8000-0000000000a1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_agent(**kwargs: object) -> Agent:
    return Agent.create("alice", "Alice Example", {"english": 80}, occurred_at=T0, **kwargs)  # type: ignore[arg-type]


# Each state reached by the shortest path of legal commands.
PATHS: dict[AgentState, list[Callable[[Agent], None]]] = {
    AgentState.LOGGED_OUT: [],
    AgentState.AVAILABLE: [lambda a: a.login("sip:1001@pbx.example.com", at(1))],
    AgentState.RESERVED: [
        lambda a: a.login("sip:1001@pbx.example.com", at(1)),
        lambda a: a.reserve(CALL, QUEUE, 15, at(2)),
    ],
    AgentState.ON_CALL: [
        lambda a: a.login("sip:1001@pbx.example.com", at(1)),
        lambda a: a.reserve(CALL, QUEUE, 15, at(2)),
        lambda a: a.accept_offer(CALL, at(5)),
    ],
    AgentState.WRAP_UP: [
        lambda a: a.login("sip:1001@pbx.example.com", at(1)),
        lambda a: a.reserve(CALL, QUEUE, 15, at(2)),
        lambda a: a.accept_offer(CALL, at(5)),
        lambda a: a.end_call(CALL, 30, at(65)),
    ],
    AgentState.PAUSED: [
        lambda a: a.login("sip:1001@pbx.example.com", at(1)),
        lambda a: a.pause("break", at(2)),
    ],
}


def agent_in(state: AgentState, *, collected: bool = True) -> Agent:
    """An agent in ``state``; ``collected``: its history already taken, so
    ``collect_events`` shows only what the test does next."""
    agent = new_agent()
    for step in PATHS[state]:
        step(agent)
    if collected:
        agent.collect_events()
    assert agent.state is state
    return agent
