"""Menus whose actions name each other (a -> b -> a), with fake legs: a caller who
presses nothing is not played menus for ever; the call ends failed / ivr_loop
past ``MAX_MENU_ENTRIES`` menus entered since the caller last chose an option by a
key, so one choosing menus by keys is never cut off (application.b2bua.front)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from application.b2bua import front as flow
from application.b2bua.front import MAX_MENU_ENTRIES, Front, Stage
from application.b2bua.legs import Timer
from domain.addressing import Target
from domain.ivr import IvrMenu
from tests.unit.b2bua_fakes import Clock, FakeLeg

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def looping_menus(max_retries: int = 0) -> tuple[IvrMenu, IvrMenu]:
    """Menus a and b, each one's default action the other (accepted by the domain:
    only a menu naming itself is refused)."""
    a = IvrMenu.create("a", "A", "a-prompt", occurred_at=T0, max_retries=max_retries)
    b = IvrMenu.create("b", "B", "b-prompt", occurred_at=T0, max_retries=max_retries,
                       default_action=Target.ivr(a.id))
    a.set_default_action(Target.ivr(b.id), T0)
    return a, b


def front(*menus: IvrMenu) -> tuple[Front[FakeLeg], FakeLeg]:
    by_id = {m.id: m for m in menus}
    caller = FakeLeg("caller")
    return Front(uuid4(), caller, by_id.get, lambda _: None, lambda t: f"{t.kind}:{t.value}",
                 20.0, Clock()), caller


def silence(visit: Front[FakeLeg], limit: int = 1000) -> tuple[int, list[flow.FrontAction]]:
    """Every menu said and every key wait run out, until the call ends (or ``limit``):
    how many menus were played, and the actions that ended it."""
    played = 1  # the menu the caller was sent to
    for _ in range(limit):
        visit.prompt_ended()
        actions = visit.timer_fired(Timer.KEY_WAIT)
        played += sum(isinstance(a, flow.PlayMenu) for a in actions)
        if any(isinstance(a, flow.Goodbye) for a in actions):
            return played, actions
    return played, []


def test_menus_whose_defaults_name_each_other_end_a_silent_call_as_an_ivr_loop() -> None:
    a, b = looping_menus()
    visit, _ = front(a, b)
    visit.go(Target.ivr(a.id))
    played, end = silence(visit)
    assert end[-1] == flow.Goodbye("ivr_loop")
    assert played == MAX_MENU_ENTRIES
    assert visit.stage is Stage.STARTING  # the goodbye's: then the call ends


def test_replays_of_a_menu_are_not_entries_so_each_menu_keeps_its_retries() -> None:
    a, b = looping_menus(max_retries=2)  # each menu is heard 3 times before its default
    visit, _ = front(a, b)
    visit.go(Target.ivr(a.id))
    played, end = silence(visit)
    assert end[-1] == flow.Goodbye("ivr_loop")
    assert played == 3 * MAX_MENU_ENTRIES
    assert visit.menu_entries == MAX_MENU_ENTRIES + 1


def test_a_caller_choosing_menus_by_keys_is_never_cut_off_as_a_loop() -> None:
    a, b = looping_menus()
    a.set_option("1", Target.ivr(b.id), T0)
    b.set_option("0", Target.ivr(a.id), T0)  # "0: back to the main menu"
    visit, caller = front(a, b)
    visit.go(Target.ivr(a.id))
    for press in range(3 * MAX_MENU_ENTRIES):  # a, b, a, b... each by a valid key
        visit.prompt_ended()
        assert isinstance(visit.key_pressed(caller, "0" if press % 2 else "1")[-1],
                          flow.PlayMenu)
    assert visit.stage is Stage.IVR
    assert visit.menu_entries == 1


def test_menus_entered_without_a_key_after_the_last_choice_are_bound_again() -> None:
    a, b = looping_menus()
    a.set_option("1", Target.ivr(b.id), T0)
    visit, caller = front(a, b)
    visit.go(Target.ivr(a.id))
    for _ in range(MAX_MENU_ENTRIES - 2):  # silent: a -> b -> a ... by default actions
        visit.prompt_ended()
        visit.timer_fired(Timer.KEY_WAIT)
    assert (visit.menu_id, visit.menu_entries) == (a.id, MAX_MENU_ENTRIES - 1)
    visit.key_pressed(caller, "1")  # the caller chooses b: the count starts again there
    played, end = silence(visit)
    assert end[-1] == flow.Goodbye("ivr_loop")
    assert played == MAX_MENU_ENTRIES
