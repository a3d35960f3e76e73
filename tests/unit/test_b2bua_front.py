"""A call-centre call's front (application.b2bua.front) with fake legs: where
the caller is sent (queue, menu, number, goodbye) and the IVR's keys, prompts
and timeouts. No SIP stack, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Timer
from domain.addressing import Target
from domain.call_commands import RouteCall
from domain.ivr import IvrMenu
from domain.queue import Queue
from tests.unit.b2bua_fakes import Clock, FakeLeg

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SALES = Queue.id_for("sales")


def menu(key: str = "main", *, max_retries: int = 1, timeout_s: float = 4.0) -> IvrMenu:
    made = IvrMenu.create(key, key.title(), f"{key}-prompt", occurred_at=T0,
                          timeout_s=timeout_s, max_retries=max_retries)
    made.set_option("1", Target.queue(SALES), T0)
    made.set_option("0", Target.number("2000"), T0)
    made.set_option("*", Target.repeat(), T0)
    return made


def front(*menus: IvrMenu) -> tuple[Front[FakeLeg], FakeLeg]:
    by_id = {m.id: m for m in menus}
    caller = FakeLeg("caller")
    return Front(uuid4(), caller, by_id.get, lambda t: f"{t.kind}:{t.value}", Clock()), caller


def routed(actions: list[flow.FrontAction]) -> list[str]:
    return [a.command.target for a in actions
            if isinstance(a, act.Emit) and isinstance(a.command, RouteCall)]


def test_a_queue_destination_enters_the_queue() -> None:
    visit, _ = front()
    assert visit.go(Target.queue(SALES)) == [flow.EnterQueue(SALES)]


def test_a_number_is_noted_as_the_route_then_dialled_and_hangup_says_goodbye() -> None:
    visit, _ = front()
    actions = visit.go(Target.number("2000"))
    assert routed(actions) == ["number:2000"]
    assert actions[-1] == flow.DialNumber("2000")
    assert visit.go(Target.hangup()) == [flow.Goodbye("ivr_hangup")]
    assert visit.go(Target.recording("hours")) == [flow.Goodbye("recording_unavailable")]


def test_after_an_answer_a_new_destination_is_not_a_new_route() -> None:
    visit, _ = front()
    visit.ever_answered = True
    assert visit.go(Target.number("2000")) == [flow.DialNumber("2000")]


def test_a_menu_plays_its_prompt_then_waits_its_timeout_for_a_key() -> None:
    main = menu(timeout_s=4.0)
    visit, _ = front(main)
    actions = visit.go(Target.ivr(main.id))
    assert routed(actions) == [f"ivr:{main.id}"]
    assert actions[-2:] == [act.CancelTimer(Timer.KEY_WAIT), flow.PlayMenu("main-prompt")]
    assert (visit.stage, visit.menu_id, visit.attempt) == (Stage.IVR, main.id, 1)
    assert visit.prompt_ended() == [act.StartTimer(Timer.KEY_WAIT, 4.0)]


def test_a_key_barges_in_and_goes_where_the_menu_says() -> None:
    main = menu()
    visit, caller = front(main)
    visit.go(Target.ivr(main.id))
    assert visit.key_pressed(caller, "1") == [
        act.CancelTimer(Timer.KEY_WAIT), flow.StopPrompt(), flow.EnterQueue(SALES)]


def test_keys_from_another_leg_or_outside_a_menu_are_ignored() -> None:
    main = menu()
    visit, caller = front(main)
    assert visit.key_pressed(caller, "1") == []  # not in a menu yet
    visit.go(Target.ivr(main.id))
    assert visit.key_pressed(FakeLeg("agent"), "1") == []
    visit.stage = Stage.QUEUE
    assert visit.key_pressed(caller, "1") == []
    assert visit.prompt_ended() == []


def test_a_timeout_replays_the_menu_then_runs_its_default_action() -> None:
    main = menu(max_retries=1)  # the default action: hang up
    visit, _ = front(main)
    visit.go(Target.ivr(main.id))
    again = visit.timer_fired(Timer.KEY_WAIT)
    assert again[-1] == flow.PlayMenu("main-prompt")
    assert routed(again) == []  # the same menu: no new route
    assert visit.attempt == 2
    assert visit.timer_fired(Timer.KEY_WAIT)[-1] == flow.Goodbye("ivr_hangup")


def test_an_invalid_key_replays_and_repeat_keeps_the_attempt() -> None:
    main = menu(max_retries=2)
    visit, caller = front(main)
    visit.go(Target.ivr(main.id))
    visit.key_pressed(caller, "7")
    assert visit.attempt == 2
    assert visit.key_pressed(caller, "*")[-1] == flow.PlayMenu("main-prompt")
    assert visit.attempt == 2


def test_a_submenu_is_a_new_route_and_an_unknown_menu_says_goodbye() -> None:
    main, billing = menu(), menu("billing")
    main.set_option("2", Target.ivr(billing.id), T0)
    visit, caller = front(main, billing)
    visit.go(Target.ivr(main.id))
    actions = visit.key_pressed(caller, "2")
    assert routed(actions) == [f"ivr:{billing.id}"]
    assert actions[-1] == flow.PlayMenu("billing-prompt")
    assert visit.go(Target.ivr(uuid4())) == [flow.Goodbye("unknown_menu")]
