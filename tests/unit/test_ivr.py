"""IVR menus: configuration events and every path of ``decide`` (a key, an
invalid key, a timeout, retries exhausted, a submenu, repeat)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.addressing import Target
from domain.errors import InvalidValue
from domain.ivr import IvrDecision, IvrMenu, IvrOutcome
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
SALES = Target.queue(Queue.id_for("sales"))
BILLING_MENU = Target.ivr(IvrMenu.id_for("billing"))
OPERATOR = Target.number("2000")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def main_menu(max_retries: int = 2, default_action: Target | None = None) -> IvrMenu:
    menu = IvrMenu.create(
        "main",
        "Main menu",
        "welcome-press-1-sales",
        occurred_at=T0,
        max_retries=max_retries,
        default_action=default_action,
    )
    menu.set_option("1", SALES, T0)
    menu.set_option("2", BILLING_MENU, T0)
    menu.set_option("0", OPERATOR, T0)
    menu.set_option("*", Target.repeat(), T0)
    menu.set_option("#", Target.hangup(), T0)
    return menu


@pytest.mark.parametrize(
    ("digit", "action"),
    [("1", SALES), ("2", BILLING_MENU), ("0", OPERATOR), ("#", Target.hangup())],
)
def test_a_valid_key_selects_its_action(digit: str, action: Target) -> None:
    assert main_menu().decide(digit, 1) == IvrDecision(IvrOutcome.SELECTED, action, 1)


def test_a_submenu_starts_its_own_attempts_afresh() -> None:
    decision = main_menu().decide("2", 3)
    assert decision.action.aggregate_id == IvrMenu.id_for("billing")
    assert decision.next_attempt == 1


def test_repeat_replays_the_menu_without_counting_a_failure() -> None:
    assert main_menu().decide("*", 2) == IvrDecision(IvrOutcome.SELECTED, Target.repeat(), 2)


def test_an_invalid_key_replays_the_menu_with_the_next_attempt() -> None:
    assert main_menu().decide("7", 1) == IvrDecision(IvrOutcome.INVALID, Target.repeat(), 2)


def test_a_timeout_replays_the_menu_with_the_next_attempt() -> None:
    assert main_menu().decide(None, 2) == IvrDecision(IvrOutcome.TIMEOUT, Target.repeat(), 3)


def test_retries_exhausted_run_the_default_action() -> None:
    menu = main_menu(max_retries=2, default_action=OPERATOR)
    assert menu.decide(None, 3) == IvrDecision(IvrOutcome.EXHAUSTED, OPERATOR, 4)
    assert menu.decide("9", 3).outcome is IvrOutcome.EXHAUSTED


def test_a_caller_who_never_presses_hears_the_menu_one_plus_retries_times() -> None:
    menu = main_menu(max_retries=2)
    attempt, plays = 1, 1
    decision = menu.decide(None, attempt)
    while decision.outcome is not IvrOutcome.EXHAUSTED and plays < 100:
        attempt, plays = decision.next_attempt, plays + 1
        decision = menu.decide(None, attempt)
    assert plays == 3
    assert decision.action == Target.hangup()  # the default default


def test_with_no_retries_the_first_failure_runs_the_default() -> None:
    assert main_menu(max_retries=0).decide("5", 1).outcome is IvrOutcome.EXHAUSTED


@pytest.mark.parametrize(("digit", "attempt"), [("12", 1), ("x", 1), ("", 1), ("1", 0)])
def test_decide_refuses_malformed_input(digit: str, attempt: int) -> None:
    with pytest.raises(InvalidValue):
        main_menu().decide(digit, attempt)


def test_dtmf_letters_are_keys_too() -> None:
    assert main_menu().decide("A", 1).outcome is IvrOutcome.INVALID


def test_configuration_changes_are_events_and_unchanged_values_are_not() -> None:
    menu = main_menu()
    menu.collect_events()
    menu.set_prompt("new-welcome", at(1))
    menu.set_prompt("new-welcome", at(2))
    menu.set_option("1", SALES, at(3))  # unchanged
    menu.set_option("1", OPERATOR, at(4))
    menu.remove_option("0", at(5))
    menu.set_timeout(8, at(6))
    menu.set_max_retries(4, at(7))
    menu.set_default_action(SALES, at(8))
    assert [type(e) for e in menu.collect_events()] == [
        IvrMenu.PromptChanged,
        IvrMenu.OptionSet,
        IvrMenu.OptionRemoved,
        IvrMenu.TimeoutChanged,
        IvrMenu.RetriesChanged,
        IvrMenu.DefaultActionChanged,
    ]
    assert menu.options["1"] == OPERATOR
    assert "0" not in menu.options
    assert (menu.prompt, menu.timeout_s, menu.max_retries) == ("new-welcome", 8.0, 4)
    assert menu.default_action == SALES


@pytest.mark.parametrize(
    "action",
    [Target.ivr(IvrMenu.id_for("main")), Target.recording("hello")],
)
def test_an_option_cannot_be_its_own_menu_or_a_recording(action: Target) -> None:
    with pytest.raises(InvalidValue):
        main_menu().set_option("5", action, at(1))


def test_the_default_action_cannot_be_repeat() -> None:
    with pytest.raises(InvalidValue):
        main_menu().set_default_action(Target.repeat(), at(1))
    with pytest.raises(InvalidValue):
        IvrMenu.create("x", "X", "p", occurred_at=T0, default_action=Target.repeat())


def test_remove_option_refuses_a_key_without_an_option() -> None:
    with pytest.raises(InvalidValue):
        main_menu().remove_option("5", at(1))


@pytest.mark.parametrize("kwargs", [{"timeout_s": 0}, {"max_retries": 11}, {"max_retries": -1}])
def test_create_refuses_bad_timeouts_and_retries(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidValue):
        IvrMenu.create("x", "X", "p", occurred_at=T0, **kwargs)  # type: ignore[arg-type]


def test_stored_events_rebuild_an_equal_menu() -> None:
    menu = main_menu(default_action=OPERATOR)
    app: Application[UUID] = Application()
    app.save(menu)
    stored: IvrMenu = app.repository.get(menu.id)
    assert stored == menu
    assert stored.decide("1", 1).action == SALES
