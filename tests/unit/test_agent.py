"""The Agent aggregate: every state transition, legal and illegal, creation,
login, pause, skills, the auto-pause setting and the rebuild from stored events.
Offers, wrap-up, auto-pause after misses and the reservation as a concurrency
guard are in test_agent_offers.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.agent import Agent, AgentState, UnknownSkill
from domain.errors import IllegalTransition, InvalidValue
from tests.unit.agent_support import CALL, OTHER_CALL, QUEUE, T0, agent_in, at, new_agent

COMMANDS: dict[str, Callable[[Agent], None]] = {
    "login": lambda a: a.login("sip:1001@pbx.example.com", at(100)),
    "logout": lambda a: a.logout(at(100)),
    "pause": lambda a: a.pause("lunch", at(100)),
    "resume": lambda a: a.resume(at(100)),
    "reserve": lambda a: a.reserve(OTHER_CALL, QUEUE, 15, at(100)),
    "accept_offer": lambda a: a.accept_offer(CALL, at(100)),
    "miss_offer": lambda a: a.miss_offer(CALL, at(100)),
    "cancel_offer": lambda a: a.cancel_offer(CALL, at(100)),
    "end_call": lambda a: a.end_call(CALL, 30, at(100)),
    "finish_wrap_up": lambda a: a.finish_wrap_up(at(100)),
}

LEGAL: dict[AgentState, dict[str, AgentState]] = {
    AgentState.LOGGED_OUT: {"login": AgentState.AVAILABLE},
    AgentState.AVAILABLE: {
        "logout": AgentState.LOGGED_OUT,
        "pause": AgentState.PAUSED,
        "reserve": AgentState.RESERVED,
    },
    AgentState.RESERVED: {
        "accept_offer": AgentState.ON_CALL,
        "miss_offer": AgentState.AVAILABLE,
        "cancel_offer": AgentState.AVAILABLE,
    },
    AgentState.ON_CALL: {"end_call": AgentState.WRAP_UP},
    AgentState.WRAP_UP: {
        "logout": AgentState.LOGGED_OUT,
        "pause": AgentState.PAUSED,
        "finish_wrap_up": AgentState.AVAILABLE,
    },
    AgentState.PAUSED: {
        "logout": AgentState.LOGGED_OUT,
        "pause": AgentState.PAUSED,  # a new reason re-pauses
        "resume": AgentState.AVAILABLE,
    },
}

LEGAL_CASES = [(s, c, to) for s, moves in LEGAL.items() for c, to in moves.items()]
ILLEGAL_CASES = [(s, c) for s in AgentState for c in COMMANDS if c not in LEGAL[s]]


@pytest.mark.parametrize(("state", "command", "expected"), LEGAL_CASES)
def test_legal_command_emits_one_event_and_moves_state(
    state: AgentState, command: str, expected: AgentState
) -> None:
    agent = agent_in(state)
    COMMANDS[command](agent)
    assert len(agent.collect_events()) == 1
    assert agent.state is expected
    assert agent.state_since == at(100)


@pytest.mark.parametrize(("state", "command"), ILLEGAL_CASES)
def test_illegal_command_raises_and_emits_nothing(state: AgentState, command: str) -> None:
    agent = agent_in(state)
    version = agent.version
    with pytest.raises(IllegalTransition):
        COMMANDS[command](agent)
    assert agent.collect_events() == []
    assert agent.version == version
    assert agent.state is state


def test_every_state_and_command_is_covered() -> None:
    assert len(LEGAL_CASES) + len(ILLEGAL_CASES) == len(AgentState) * len(COMMANDS)


def test_create_derives_the_id_from_the_key_and_starts_logged_out() -> None:
    agent = new_agent()
    (created,) = agent.collect_events()
    assert isinstance(created, Agent.Created)
    assert created.occurred_at == T0
    assert agent.id == Agent.id_for("alice")
    assert agent.state is AgentState.LOGGED_OUT
    assert agent.skills == {"english": 80}
    assert agent.current_call_id is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": "Alice"},  # keys are lowercase slugs
        {"name": " "},
        {"skills": {"english": 0}},
        {"skills": {"english": 101}},
        {"skills": {"Bad Skill": 5}},
        {"occurred_at": datetime(2025, 3, 1, 9)},  # naive
        {"auto_pause_after": 0},
    ],
)
def test_create_refuses_bad_values(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"key": "alice", "name": "Alice", "skills": {}, "occurred_at": T0}
    with pytest.raises(InvalidValue):
        Agent.create(**(args | kwargs))  # type: ignore[arg-type]


def test_occurred_at_is_stored_in_utc() -> None:
    agent = new_agent()
    paris = timezone(timedelta(hours=1))
    agent.login("sip:1001@pbx.example.com", datetime(2025, 3, 1, 10, 0, 1, tzinfo=paris))
    assert agent.state_since == at(1)
    assert agent.state_since.tzinfo is UTC


def test_login_refuses_a_device_that_is_not_a_sip_uri() -> None:
    with pytest.raises(InvalidValue):
        new_agent().login("1001", at(1))


def test_login_records_the_device_and_logout_forgets_it() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    assert agent.device_uri == "sip:1001@pbx.example.com"
    assert agent.idle_since == at(1)
    agent.logout(at(9))
    assert agent.device_uri is None
    assert agent.idle_since is None


def test_pause_records_the_reason_and_resume_clears_it() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.pause("lunch", at(5))
    assert (agent.state, agent.pause_reason) == (AgentState.PAUSED, "lunch")
    agent.resume(at(50))
    assert agent.pause_reason is None
    assert agent.idle_since == at(50)


def test_pause_during_wrap_up_ends_the_wrap_up() -> None:
    agent = agent_in(AgentState.WRAP_UP)
    agent.pause("training", at(70))
    assert agent.wrap_up_until is None
    assert not agent.wrap_up_due(at(1000))


def test_pausing_again_for_the_same_reason_is_illegal() -> None:
    agent = agent_in(AgentState.PAUSED)
    with pytest.raises(IllegalTransition):
        agent.pause("break", at(5))


def test_pause_needs_a_reason() -> None:
    with pytest.raises(InvalidValue):
        agent_in(AgentState.AVAILABLE).pause("", at(5))


def test_set_skill_adds_or_changes_a_level_and_same_level_is_a_no_op() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.set_skill("spanish", 40, at(5))
    agent.set_skill("english", 90, at(6))
    agent.set_skill("english", 90, at(7))
    assert [type(e) for e in agent.collect_events()] == [Agent.SkillSet, Agent.SkillSet]
    assert agent.skills == {"english": 90, "spanish": 40}


def test_remove_skill_drops_it_and_refuses_an_unknown_one() -> None:
    agent = agent_in(AgentState.ON_CALL)  # configuration is allowed in any state
    agent.remove_skill("english", at(5))
    assert agent.skills == {}
    with pytest.raises(UnknownSkill):
        agent.remove_skill("english", at(6))


@pytest.mark.parametrize("level", [0, 101, "5", True])
def test_set_skill_refuses_a_bad_level(level: int) -> None:
    with pytest.raises(InvalidValue):
        agent_in(AgentState.AVAILABLE).set_skill("spanish", level, at(5))


def test_set_auto_pause_changes_the_threshold_once() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.set_auto_pause(3, at(5))
    agent.set_auto_pause(3, at(6))
    agent.set_auto_pause(None, at(7))
    assert [type(e) for e in agent.collect_events()] == [
        Agent.AutoPauseChanged,
        Agent.AutoPauseChanged,
    ]
    assert agent.auto_pause_after is None


def test_stored_events_rebuild_an_equal_agent() -> None:
    app: Application[UUID] = Application()
    agent = agent_in(AgentState.WRAP_UP, collected=False)
    agent.set_skill("spanish", 30, at(70))
    agent.pause("meeting", at(75))
    app.save(agent)
    assert app.repository.get(agent.id) == agent
