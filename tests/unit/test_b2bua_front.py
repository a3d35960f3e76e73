"""A call-centre call's front (application.b2bua.front) with fake legs: where
the caller is sent (queue, menu, number, goodbye), the IVR's keys, prompts
and timeouts, and the wait in a queue (music, announcements, overflow,
abandon, shutdown). No SIP stack, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.centre_commands import Abandon, AskPosition, CentreDone, Enqueue, Submit
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from domain.addressing import Target
from domain.call import Disposition, HangupSide
from domain.call_commands import QueueCall, RingCall, RouteCall
from domain.ivr import IvrMenu
from domain.queue import Queue
from tests.unit.b2bua_fakes import Clock, FakeLeg, QueueSettingsFake

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SALES = Queue.id_for("sales")
SUPPORT = Queue.id_for("support")


Settings = QueueSettingsFake

QUEUES = {SALES: Settings("sales", "jazz", announce_position=True), SUPPORT: Settings("support")}


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
    return Front(uuid4(), caller, by_id.get, QUEUES.get, lambda t: f"{t.kind}:{t.value}",
                 30.0, Clock()), caller


def of_type(actions: list[flow.FrontAction], kind: type) -> list[object]:
    return [a for a in actions if isinstance(a, kind)]


def submitted(actions: list[flow.FrontAction]) -> list[object]:
    return [a.command for a in actions if isinstance(a, Submit)]


def queued(queue_id: UUID = SALES) -> Front[FakeLeg]:
    """A caller waiting in ``queue_id``: the queue took the call (its enqueue's outcome)."""
    visit, _ = front()
    visit.centre_done(CentreDone(entering(visit.go(Target.queue(queue_id))), True))
    return visit


def entering(actions: list[flow.FrontAction]) -> Enqueue:
    [enqueue] = [c for c in submitted(actions) if isinstance(c, Enqueue)]
    return enqueue


def queue_calls(actions: list[flow.FrontAction]) -> list[QueueCall]:
    return [a.command for a in actions
            if isinstance(a, act.Emit) and isinstance(a.command, QueueCall)]


def routed(actions: list[flow.FrontAction]) -> list[str]:
    return [a.command.target for a in actions
            if isinstance(a, act.Emit) and isinstance(a.command, RouteCall)]


def test_a_queue_destination_is_routed_queued_and_entered_with_its_music() -> None:
    visit, _ = front()
    actions = visit.go(Target.queue(SALES))
    assert routed(actions) == [f"queue:{SALES}"]
    enqueue = entering(actions)
    assert submitted(actions) == [Enqueue(SALES, visit.call_id, enqueue.at, "sales", None)]
    # The call's Queued follows the queue's answer (see the tests below).
    [queue_call] = queue_calls(visit.centre_done(CentreDone(enqueue, True)))
    assert isinstance(queue_call, QueueCall)
    assert queue_call.queue == "sales"
    assert queue_call.occurred_at == enqueue.at
    assert actions[-3:] == [flow.PlayMusic("jazz"), act.CancelTimer(Timer.ANNOUNCE),
                            act.StartTimer(Timer.ANNOUNCE, 1.0)]
    assert (visit.stage, visit.queue_id, visit.queue) == (Stage.QUEUE, SALES, QUEUES[SALES])


def test_a_number_is_noted_as_the_route_then_dialled_and_hangup_says_goodbye() -> None:
    visit, _ = front()
    actions = visit.go(Target.number("2000"))
    assert routed(actions) == ["number:2000"]
    assert actions[-1] == flow.DialNumber("2000")
    assert visit.go(Target.hangup()) == [flow.Goodbye("ivr_hangup")]


def test_after_an_answer_a_new_destination_is_not_a_new_route() -> None:
    visit, _ = front()
    visit.ever_answered = True
    assert visit.go(Target.number("2000")) == [flow.DialNumber("2000")]


def test_a_menu_plays_its_prompt_then_waits_its_timeout_for_a_key() -> None:
    main = menu(timeout_s=4.0)
    visit, _ = front(main)
    actions = visit.go(Target.ivr(main.id))
    assert routed(actions) == [f"ivr:{main.id}"]
    assert actions[-2:] == [act.CancelTimer(Timer.KEY_WAIT),
                            flow.PlayMenu("main-prompt", "default")]
    assert (visit.stage, visit.menu_id, visit.attempt) == (Stage.IVR, main.id, 1)
    assert visit.prompt_ended() == [act.StartTimer(Timer.KEY_WAIT, 4.0)]


def test_a_key_barges_in_and_goes_where_the_menu_says() -> None:
    main = menu()
    visit, caller = front(main)
    visit.go(Target.ivr(main.id))
    actions = visit.key_pressed(caller, "1")
    assert actions[:2] == [act.CancelTimer(Timer.KEY_WAIT), flow.StopPrompt()]
    assert of_type(actions, flow.PlayMusic) == [flow.PlayMusic("jazz")]
    assert visit.stage is Stage.QUEUE


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
    assert again[-1] == flow.PlayMenu("main-prompt", "default")
    assert routed(again) == []  # the same menu: no new route
    assert visit.attempt == 2
    assert visit.timer_fired(Timer.KEY_WAIT)[-1] == flow.Goodbye("ivr_hangup")


def test_an_invalid_key_replays_and_repeat_keeps_the_attempt() -> None:
    main = menu(max_retries=2)
    visit, caller = front(main)
    visit.go(Target.ivr(main.id))
    visit.key_pressed(caller, "7")
    assert visit.attempt == 2
    assert visit.key_pressed(caller, "*")[-1] == flow.PlayMenu("main-prompt", "default")
    assert visit.attempt == 2


def test_a_submenu_is_a_new_route_and_an_unknown_menu_says_goodbye() -> None:
    main, billing = menu(), menu("billing")
    main.set_option("2", Target.ivr(billing.id), T0)
    visit, caller = front(main, billing)
    visit.go(Target.ivr(main.id))
    actions = visit.key_pressed(caller, "2")
    assert routed(actions) == [f"ivr:{billing.id}"]
    assert actions[-1] == flow.PlayMenu("billing-prompt", "default")
    assert visit.go(Target.ivr(uuid4())) == [flow.Goodbye("unknown_menu")]


# Waiting in a queue.


def test_announcements_ask_the_position_and_say_it_then_again_later() -> None:
    visit = queued()
    ask = visit.timer_fired(Timer.ANNOUNCE)
    assert ask == [Submit(AskPosition(SALES, visit.call_id))]
    said = visit.centre_done(CentreDone(AskPosition(SALES, visit.call_id), True, 3))
    assert said == [flow.PlayPosition(3), act.CancelTimer(Timer.ANNOUNCE),
                    act.StartTimer(Timer.ANNOUNCE, 30.0)]
    visit.stage = Stage.CONNECTING  # an agent answered: no more announcements
    assert visit.timer_fired(Timer.ANNOUNCE) == []


def test_a_queue_that_refuses_the_call_says_goodbye() -> None:
    visit = queued(SUPPORT)
    enqueue = Enqueue(SUPPORT, visit.call_id, T0, "support")
    assert visit.centre_done(CentreDone(enqueue, True)) == []
    assert visit.centre_done(CentreDone(enqueue, False, error="closed")) == [
        flow.Goodbye("queue_refused")]
    assert visit.stage is Stage.STARTING


# Entering a queue is one fact: the queue's event (the call-centre lane). The
# call's Queued follows it once it is committed, never before (issue 13 §2).


def test_entering_a_queue_writes_only_the_enqueue_and_queued_follows_its_commit() -> None:
    visit, _ = front()
    actions = visit.go(Target.queue(SUPPORT))
    assert queue_calls(actions) == []  # not before the queue took the call
    enqueue = entering(actions)
    took = visit.centre_done(CentreDone(enqueue, True))
    assert took == [act.Emit(QueueCall(visit.call_id, enqueue.at, "support"))]
    assert visit.centre_done(CentreDone(enqueue, True)) == []  # heard once


def test_an_offer_heard_before_the_enqueue_outcome_queues_the_call_first() -> None:
    """The router offered the call: the queue had it (the offer is committed after
    the enqueue). Queued comes then, before the offer's ring can emit Ringing."""
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    assert visit.offered() == [act.Emit(QueueCall(visit.call_id, enqueue.at, "support"))]
    assert visit.offered() == []
    assert visit.centre_done(CentreDone(enqueue, True)) == []  # Queued once


def test_a_refused_enqueue_leaves_no_call_queued() -> None:
    visit, _ = front()
    go = visit.go(Target.queue(SUPPORT))
    refused = visit.centre_done(CentreDone(entering(go), False, error="closed"))
    assert queue_calls(go + refused) == []
    assert refused == [flow.Goodbye("queue_refused")]


def test_a_transfer_back_to_a_queue_is_queued_once_the_queue_took_it() -> None:
    visit = queued()
    visit.ever_answered = True  # an agent talked to the caller, then transferred them
    actions = visit.enter_queue(SUPPORT, transferred_from=SALES)
    assert (routed(actions), queue_calls(actions)) == ([], [])
    enqueue = entering(actions)
    assert enqueue.transferred_from == SALES
    assert queue_calls(visit.centre_done(CentreDone(enqueue, True))) == [
        QueueCall(visit.call_id, enqueue.at, "support")]


def test_a_caller_gone_before_the_queue_answered_ends_after_the_answer() -> None:
    """The end waits for the queue's answer: Queued (if it took the call) comes
    before Ended in the call's history, as the queue's CallEnqueued before its
    CallAbandoned; the end keeps the time the caller left."""
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    left = visit.caller_left()
    [abandon] = submitted(left)
    assert isinstance(abandon, Abandon)
    assert left == [Submit(abandon)]  # no end yet
    assert visit.stage is Stage.LEAVING
    assert visit.caller_left() == []  # the caller's leg reported again
    assert visit.timer_fired(Timer.ANNOUNCE) == []
    took = visit.centre_done(CentreDone(enqueue, True))
    assert took == [act.Emit(QueueCall(visit.call_id, enqueue.at, "support")),
                    flow.EndVisit(Disposition.ABANDONED, "caller_abandoned",
                                  HangupSide.CALLER, None, abandon.at)]


def test_a_caller_gone_before_the_queue_refused_the_call_cancelled_it() -> None:
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    left_at = [c.at for c in submitted(visit.caller_left()) if isinstance(c, Abandon)]
    refused = visit.centre_done(CentreDone(enqueue, False, error="closed"))
    assert refused == [flow.EndVisit(Disposition.CANCELLED, "originator_cancel",
                                     HangupSide.CALLER, None, left_at[0])]


def test_an_overflow_to_a_queue_is_a_new_wait_and_to_a_number_a_dial() -> None:
    visit = queued()
    assert visit.queue_left(SUPPORT, Target.queue(SALES)) == []  # not its queue
    moved = visit.queue_left(SALES, Target.queue(SUPPORT))
    assert moved[0] == flow.WithdrawRings()
    assert [a.command.queue for a in of_type(moved, act.Emit)] == [  # type: ignore[attr-defined]
        "support"]
    assert submitted(moved) == []  # the platform enqueued it there itself
    assert (visit.stage, visit.queue_id) == (Stage.QUEUE, SUPPORT)
    dialled = visit.queue_left(SUPPORT, Target.number("2000"))
    assert dialled[0] == flow.WithdrawRings()
    assert dialled[-1] == flow.DialNumber("2000")
    assert (visit.queue_id, visit.queue) == (None, None)


def test_a_caller_hanging_up_while_waiting_abandons_and_elsewhere_cancels() -> None:
    visit = queued()
    left = visit.caller_left()
    [abandon] = submitted(left)
    assert isinstance(abandon, Abandon)
    assert (abandon.queue_id, abandon.dropped) == (SALES, False)
    assert left[-1] == flow.EndVisit(Disposition.ABANDONED, "caller_abandoned",
                                     HangupSide.CALLER, None)
    visit, _ = front()
    assert visit.caller_left() == [flow.EndVisit(Disposition.CANCELLED, "originator_cancel",
                                                 HangupSide.CALLER, None)]


def test_shutdown_drops_a_waiting_call_from_its_queue_and_fails_it_with_503() -> None:
    visit = queued()
    actions = visit.shutdown("worker_stopping")
    [drop] = submitted(actions)
    assert isinstance(drop, Abandon)
    assert drop.dropped
    assert drop.what().startswith("drop ")
    assert actions[-1] == flow.EndVisit(Disposition.FAILED, "worker_stopping",
                                        HangupSide.SYSTEM, 503)



def test_a_worker_stopping_before_the_queue_answered_ends_the_call_after_the_answer() -> None:
    """Ended at once, the call would miss the Queued of a queue that took it (the
    queue has the call and its dropped abandon): the end waits for the answer."""
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    stopping = visit.shutdown("worker_shutdown")
    [drop] = submitted(stopping)
    assert isinstance(drop, Abandon)
    assert drop.dropped
    assert stopping == [Submit(drop)]  # no end yet
    assert visit.stage is Stage.LEAVING
    took = visit.centre_done(CentreDone(enqueue, True))
    assert took == [act.Emit(QueueCall(visit.call_id, enqueue.at, "support")),
                    flow.EndVisit(Disposition.FAILED, "worker_shutdown", HangupSide.SYSTEM,
                                  503, drop.at)]


def test_a_worker_stopping_before_the_queue_refused_the_call_fails_it_unqueued() -> None:
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    [drop] = submitted(visit.shutdown("worker_shutdown"))
    refused = visit.centre_done(CentreDone(enqueue, False, error="closed"))
    assert refused == [flow.EndVisit(Disposition.FAILED, "worker_shutdown", HangupSide.SYSTEM,
                                     503, drop.at)]


def test_a_worker_that_waits_no_longer_ends_a_call_still_awaiting_its_queue() -> None:
    visit, _ = front()
    enqueue = entering(visit.go(Target.queue(SUPPORT)))
    [drop] = submitted(visit.shutdown("worker_shutdown"))
    assert visit.shutdown("worker_shutdown") == [
        flow.EndVisit(Disposition.FAILED, "worker_shutdown", HangupSide.SYSTEM, 503, drop.at)]
    assert visit.centre_done(CentreDone(enqueue, True)) == []  # heard after the end


# Dialling a number.


def test_a_number_with_no_route_ends_the_call_failed_with_404() -> None:
    visit, _ = front()
    actions = visit.dial(None)
    assert visit.stage is Stage.DIALLING
    assert actions == [flow.PlayMusic("default"),
                       flow.EndVisit(Disposition.FAILED, "no_route", HangupSide.SYSTEM, 404)]


def test_a_dialled_party_rings_once_answers_and_talks() -> None:
    visit, _ = front()
    assert visit.dial("sip:2000@h") == [flow.PlayMusic("default"), flow.PlaceCallee("sip:2000@h")]
    callee = FakeLeg("callee")
    [ring] = visit.dialled(Ringing(callee, 180))
    assert isinstance(ring, act.Emit)
    assert isinstance(ring.command, RingCall)
    assert visit.dialled(Ringing(callee, 100)) == []
    assert visit.dialled(Answered(callee)) == [flow.Talk()]


def test_a_dialled_party_that_fails_ends_the_call_or_a_transfer() -> None:
    visit, _ = front()
    visit.dial("sip:2000@h")
    assert visit.dialled(Gone(FakeLeg("callee"), 486)) == [
        flow.ClearCallee(), flow.EndVisit(Disposition.BUSY, "user_busy", HangupSide.CALLEE, 486)]
    assert visit.callee_not_placed(no_slot=True)[-1] == flow.EndVisit(
        Disposition.FAILED, "no_capacity", HangupSide.SYSTEM, 503)
    visit.ever_answered = True  # the target of a blind transfer
    assert visit.dialled(Ringing(FakeLeg("target"), 180)) == []
    assert visit.dialled(Gone(FakeLeg("target"), 480)) == [
        flow.ClearCallee(), flow.EndAnswered(HangupSide.SYSTEM, "transfer_failed")]
