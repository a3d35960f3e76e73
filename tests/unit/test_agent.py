"""The Agent aggregate: every state transition, legal and illegal, offers,
wrap-up, auto-pause, skills, and the reservation as a concurrency guard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from domain.agent import AUTO_PAUSE_REASON, Agent, AgentState, UnknownSkill, WrongCall
from domain.errors import IllegalTransition, InvalidValue

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


def test_reserve_holds_the_call_queue_and_offer_deadline() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.reserve(CALL, QUEUE, 15, at(10))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.Reserved)
    assert (event.call_id, event.queue_id, event.offer_deadline) == (CALL, QUEUE, at(25))
    assert agent.current_call_id == CALL
    assert agent.current_queue_id == QUEUE
    assert not agent.offer_expired(at(24.9))
    assert agent.offer_expired(at(25))


def test_reserve_for_a_direct_call_has_no_queue() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    agent.reserve(CALL, None, 20, at(10))
    assert agent.current_queue_id is None


@pytest.mark.parametrize("timeout", [0, -1, 601, float("nan"), True])
def test_reserve_refuses_a_bad_offer_timeout(timeout: float) -> None:
    agent = agent_in(AgentState.AVAILABLE)
    with pytest.raises(InvalidValue):
        agent.reserve(CALL, QUEUE, timeout, at(10))
    assert agent.state is AgentState.AVAILABLE


def test_reserve_refuses_a_second_call_while_reserved() -> None:
    agent = agent_in(AgentState.RESERVED)
    with pytest.raises(IllegalTransition):
        agent.reserve(OTHER_CALL, QUEUE, 15, at(3))
    assert agent.current_call_id == CALL


@pytest.mark.parametrize(
    ("state", "command"),
    [
        (AgentState.RESERVED, lambda a: a.accept_offer(OTHER_CALL, at(9))),
        (AgentState.RESERVED, lambda a: a.miss_offer(OTHER_CALL, at(9))),
        (AgentState.RESERVED, lambda a: a.cancel_offer(OTHER_CALL, at(9))),
        (AgentState.ON_CALL, lambda a: a.end_call(OTHER_CALL, 0, at(9))),
    ],
)
def test_commands_naming_another_call_raise_wrong_call(
    state: AgentState, command: Callable[[Agent], None]
) -> None:
    agent = agent_in(state)
    with pytest.raises(WrongCall):
        command(agent)
    assert agent.state is state
    assert agent.current_call_id == CALL


def test_accept_offer_puts_the_agent_on_the_offered_call() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.accept_offer(CALL, at(4))
    assert agent.state is AgentState.ON_CALL
    assert agent.current_call_id == CALL
    assert agent.current_queue_id == QUEUE
    assert agent.offer_deadline is None


def test_end_call_starts_wrap_up_for_the_queue_length_and_counts_the_call() -> None:
    agent = agent_in(AgentState.ON_CALL)
    agent.end_call(CALL, 30, at(60))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.CallEnded)
    assert (event.call_id, event.queue_id, event.wrap_up_until) == (CALL, QUEUE, at(90))
    assert agent.state is AgentState.WRAP_UP
    assert agent.current_call_id is None
    assert agent.calls_handled == 1
    assert not agent.wrap_up_due(at(89))
    assert agent.wrap_up_due(at(90))


def test_end_call_without_wrap_up_goes_straight_to_available() -> None:
    agent = agent_in(AgentState.ON_CALL)
    agent.end_call(CALL, 0, at(60))
    assert agent.state is AgentState.AVAILABLE
    assert agent.wrap_up_until is None
    assert agent.idle_since == at(60)


def test_end_call_refuses_a_negative_wrap_up() -> None:
    with pytest.raises(InvalidValue):
        agent_in(AgentState.ON_CALL).end_call(CALL, -1, at(60))


def test_finish_wrap_up_makes_the_agent_available() -> None:
    agent = agent_in(AgentState.WRAP_UP)
    agent.finish_wrap_up(at(80))
    assert agent.state is AgentState.AVAILABLE
    assert agent.wrap_up_until is None


def test_miss_offer_counts_the_miss_and_frees_the_agent() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.miss_offer(CALL, at(17))
    (event,) = agent.collect_events()
    assert isinstance(event, Agent.OfferMissed)
    assert not event.auto_paused
    assert agent.state is AgentState.AVAILABLE
    assert agent.current_call_id is None
    assert (agent.missed_offers, agent.consecutive_misses) == (1, 1)


def test_cancel_offer_frees_the_agent_without_counting_a_miss() -> None:
    agent = agent_in(AgentState.RESERVED)
    agent.cancel_offer(CALL, at(3))
    assert agent.state is AgentState.AVAILABLE
    assert agent.current_call_id is None
    assert agent.missed_offers == 0


def miss_once(agent: Agent, second: float, auto_pause_after: int | None = None) -> None:
    call = uuid4()
    agent.reserve(call, QUEUE, 15, at(second))
    agent.miss_offer(call, at(second + 15), auto_pause_after=auto_pause_after)


def test_agent_auto_pauses_after_the_configured_misses_in_a_row() -> None:
    agent = Agent.create("bob", "Bob", occurred_at=T0, auto_pause_after=2)
    agent.login("sip:bob@pbx.example.com", at(1))
    miss_once(agent, 10)
    after_one = agent.state
    miss_once(agent, 40)
    assert (after_one, agent.state) == (AgentState.AVAILABLE, AgentState.PAUSED)
    assert agent.pause_reason == AUTO_PAUSE_REASON
    assert (agent.missed_offers, agent.consecutive_misses) == (2, 0)


def test_an_accepted_offer_resets_the_consecutive_misses() -> None:
    agent = Agent.create("bob", "Bob", occurred_at=T0, auto_pause_after=2)
    agent.login("sip:bob@pbx.example.com", at(1))
    miss_once(agent, 10)
    agent.reserve(CALL, QUEUE, 15, at(30))
    agent.accept_offer(CALL, at(33))
    agent.end_call(CALL, 0, at(90))
    miss_once(agent, 100)
    assert agent.state is AgentState.AVAILABLE
    assert (agent.missed_offers, agent.consecutive_misses) == (2, 1)


def test_a_threshold_passed_in_overrides_the_agents_own() -> None:
    agent = agent_in(AgentState.AVAILABLE)  # no threshold of its own
    miss_once(agent, 10, auto_pause_after=1)
    assert agent.state is AgentState.PAUSED
    assert agent.pause_reason == AUTO_PAUSE_REASON


def test_a_threshold_passed_in_must_be_positive() -> None:
    agent = agent_in(AgentState.RESERVED)
    with pytest.raises(InvalidValue):
        agent.miss_offer(CALL, at(17), auto_pause_after=0)
    assert agent.state is AgentState.RESERVED


def test_without_a_threshold_misses_never_pause() -> None:
    agent = agent_in(AgentState.AVAILABLE)
    for n in range(5):
        miss_once(agent, 10 + 20 * n)
    assert agent.state is AgentState.AVAILABLE
    assert agent.consecutive_misses == 5


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


def test_two_reservations_of_one_agent_version_cannot_both_be_saved() -> None:
    app: Application[UUID] = Application()
    agent = agent_in(AgentState.AVAILABLE, collected=False)
    app.save(agent)
    first: Agent = app.repository.get(agent.id)
    second: Agent = app.repository.get(agent.id)
    first.reserve(CALL, QUEUE, 15, at(2))
    second.reserve(OTHER_CALL, QUEUE, 15, at(2))
    app.save(first)
    with pytest.raises(IntegrityError):
        app.save(second)
    assert app.repository.get(agent.id).current_call_id == CALL


def test_stored_events_rebuild_an_equal_agent() -> None:
    app: Application[UUID] = Application()
    agent = agent_in(AgentState.WRAP_UP, collected=False)
    agent.set_skill("spanish", 30, at(70))
    agent.pause("meeting", at(75))
    app.save(agent)
    assert app.repository.get(agent.id) == agent
