"""The plain bridged call's flow (application.b2bua.plain) with fake legs:
route, ring, answer, bridge, hold from either side, blind transfer by REFER,
and every way the call ends. No SIP stack, no database."""

from __future__ import annotations

from application.b2bua import actions as act
from application.b2bua.legs import (
    Answered,
    Audio,
    Gone,
    LegRole,
    MediaChanged,
    ReferReceived,
    Ringing,
    ShutdownAsked,
    Timer,
    TimerFired,
)
from application.b2bua.plain import Phase
from domain.call import Disposition, HangupSide, TransferKind
from tests.unit.b2bua_fakes import FakeAdapter, FakeLeg, make_call


def answered_call() -> tuple[FakeAdapter, FakeLeg, FakeLeg]:
    adapter, caller = make_call()
    callee = adapter.placed[0]
    adapter.fact(Ringing(callee, 180))
    adapter.fact(Answered(callee))
    return adapter, caller, callee


def end_of(adapter: FakeAdapter) -> act.Finish:
    finishes = [a for a in adapter.actions if isinstance(a, act.Finish)]
    assert len(finishes) == 1, adapter.actions
    return finishes[0]


# Routing, ringing, answer.


def test_a_routed_call_is_initiated_routed_and_the_callee_invited() -> None:
    adapter, _ = make_call("sip:bob@127.0.0.1")
    assert adapter.command_names() == ["InitiateCall", "RouteCall"]
    assert adapter.commands[1].target == "sip:bob@127.0.0.1"  # type: ignore[attr-defined]
    assert act.StartTimer(Timer.NO_ANSWER, 30.0) in adapter.actions
    assert act.Place(LegRole.CALLEE, "sip:bob@127.0.0.1") in adapter.actions
    assert adapter.call.b is adapter.placed[0]


def test_each_provisional_is_relayed_once_and_the_ring_recorded_once() -> None:
    adapter, caller = make_call()
    callee = adapter.placed[0]
    for status in (180, 180, 183, 181):
        adapter.fact(Ringing(callee, status))
    assert [a for a in adapter.actions if isinstance(a, act.Respond)] == [
        act.Respond(caller, 180), act.Respond(caller, 183)]
    assert adapter.command_names().count("RingCall") == 1


def test_the_callee_answering_answers_the_caller_and_bridges_them() -> None:
    adapter, caller = make_call()
    done = adapter.fact(Answered(adapter.placed[0]))
    assert done[0] == act.CancelTimer(Timer.NO_ANSWER)
    assert type(done[1].command).__name__ == "AnswerCall"  # type: ignore[union-attr]
    assert done[2:] == [act.Respond(caller, 200), act.Bridge(), act.SampleMedia()]
    assert adapter.call.phase is Phase.ANSWERED


# Ends before an answer.


def test_no_route_ends_the_call_failed_with_404() -> None:
    adapter, caller = make_call(None)
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_cause, end.sip_status) == (
        Disposition.FAILED, "no_route", 404)
    assert act.HangUp(caller, 404, None) in adapter.actions
    assert adapter.command_names() == ["InitiateCall", "EndCall"]


def test_no_call_slot_for_the_callee_answers_503_with_retry_after() -> None:
    adapter, caller = make_call(slots=0)
    end = end_of(adapter).end
    assert (end.hangup_cause, end.hangup_side, end.sip_status) == (
        "no_capacity", HangupSide.SYSTEM, 503)
    assert act.HangUp(caller, 503, {"Retry-After": "7"}) in adapter.actions


def test_a_busy_callee_is_relayed_to_the_caller() -> None:
    adapter, caller = make_call()
    adapter.fact(Gone(adapter.placed[0], 486))
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_side, end.sip_status) == (
        Disposition.BUSY, HangupSide.CALLEE, 486)
    assert act.HangUp(caller, 486, None) in adapter.actions
    assert adapter.actions[-1] == act.HangUpAllBut(caller)


def test_the_caller_cancelling_ends_the_call_cancelled() -> None:
    adapter, caller = make_call()
    adapter.fact(Gone(caller, 487))
    finish = end_of(adapter)
    assert (finish.end.disposition, finish.end.hangup_side, finish.answered) == (
        Disposition.CANCELLED, HangupSide.CALLER, False)


def test_no_answer_in_time_ends_the_call_480() -> None:
    adapter, _ = make_call()
    adapter.fact(TimerFired(Timer.NO_ANSWER))
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_cause, end.sip_status) == (
        Disposition.NO_ANSWER, "no_answer_timeout", 480)


def test_the_no_answer_timer_firing_after_the_answer_changes_nothing() -> None:
    adapter, _, _ = answered_call()
    assert adapter.fact(TimerFired(Timer.NO_ANSWER)) == []


# Ends after the answer.


def test_either_party_hanging_up_ends_the_answered_call_on_its_side() -> None:
    for side in (HangupSide.CALLER, HangupSide.CALLEE):
        adapter, caller, callee = answered_call()
        adapter.fact(Gone(caller if side is HangupSide.CALLER else callee, 200))
        finish = end_of(adapter)
        assert (finish.end.disposition, finish.end.hangup_side, finish.answered) == (
            Disposition.ANSWERED, side, True)
        assert adapter.actions[-1] == act.HangUpAllBut(None)


def test_facts_after_the_end_are_ignored() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(Gone(callee, 200))
    assert adapter.fact(Gone(caller, 200)) == []
    assert adapter.fact(MediaChanged(caller, Audio.REMOTE_HOLD)) == []
    assert adapter.command_names().count("EndCall") == 1


def test_shutdown_ends_an_answered_call_answered_and_a_ringing_one_with_503() -> None:
    adapter, _, _ = answered_call()
    adapter.fact(ShutdownAsked("worker_shutdown"))
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_side) == (Disposition.ANSWERED, HangupSide.SYSTEM)
    ringing, caller = make_call()
    ringing.fact(ShutdownAsked("worker_shutdown"))
    assert end_of(ringing).end.disposition is Disposition.FAILED
    assert act.HangUp(caller, 503, {"Retry-After": "7"}) in ringing.actions


def test_commands_carry_the_time_of_their_fact_not_of_their_storing() -> None:
    # The store may be down (outage): the flow never waits for it, and each
    # command keeps the moment its fact happened, in the order they happened.
    adapter, caller, _ = answered_call()
    adapter.fact(Gone(caller, 200))
    times = [c.occurred_at for c in adapter.commands]  # type: ignore[attr-defined]
    assert times == sorted(times)
    assert len(set(times)) == len(times)


# Hold, from either side.


def test_the_callee_holding_holds_the_caller_and_resuming_resumes() -> None:
    adapter, caller, callee = answered_call()
    held = adapter.fact(MediaChanged(callee, Audio.REMOTE_HOLD))
    assert held[1:] == [act.Unbridge(), act.Hold(caller), act.Bridge()]
    assert adapter.call.waiting_party() is caller
    resumed = adapter.fact(MediaChanged(callee, Audio.ACTIVE))
    assert resumed[1:] == [act.StopHoldMusic(), act.Unhold(caller), act.Bridge()]
    assert adapter.command_names()[-2:] == ["HoldCall", "ResumeCall"]
    assert adapter.call.waiting_party() is None


def test_the_caller_holding_holds_the_callee() -> None:
    adapter, caller, callee = answered_call()
    assert act.Hold(callee) in adapter.fact(MediaChanged(caller, Audio.REMOTE_HOLD))
    assert adapter.call.held_by is caller


def test_only_the_holder_resumes_and_a_second_hold_is_not_recorded() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(MediaChanged(callee, Audio.REMOTE_HOLD))
    assert adapter.fact(MediaChanged(caller, Audio.REMOTE_HOLD)) == [act.Bridge()]
    assert adapter.fact(MediaChanged(caller, Audio.ACTIVE)) == [act.Bridge()]
    assert adapter.command_names().count("HoldCall") == 1
    assert adapter.call.held_by is callee


# Blind transfer by REFER.


def test_a_refer_before_the_answer_or_while_held_is_refused() -> None:
    adapter, caller = make_call()
    assert adapter.fact(ReferReceived(caller, "<sip:carol@127.0.0.1>")) == [
        act.RefuseRefer(603)]
    adapter, caller, callee = answered_call()
    adapter.fact(MediaChanged(callee, Audio.REMOTE_HOLD))
    assert adapter.fact(ReferReceived(caller, "<sip:carol@127.0.0.1>")) == [
        act.RefuseRefer(603)]


def test_a_blind_transfer_by_the_callee_replaces_it_when_the_target_answers() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(ReferReceived(callee, "<sip:carol@127.0.0.1>"))
    target = adapter.placed[-1]
    transfer = adapter.commands[-1]
    assert (transfer.kind, transfer.target) == (  # type: ignore[attr-defined]
        TransferKind.BLIND, "sip:carol@127.0.0.1")
    assert adapter.call.waiting_party() is caller  # music while the target rings
    assert adapter.call.parties() == (caller, target)
    assert adapter.fact(Gone(callee, 200)) == []  # the transferor leaves: expected
    done = adapter.fact(Answered(target))
    assert done == [act.StopHoldMusic(), act.TransferAnswered(callee, target),
                    act.StartTimer(Timer.TRANSFEROR_GRACE, 5.0), act.Bridge()]
    assert (adapter.call.a, adapter.call.b) == (caller, target)
    assert adapter.call.waiting_party() is None


def test_a_transferor_lingering_past_the_grace_is_hung_up() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(ReferReceived(caller, "sip:carol@127.0.0.1"))
    target = adapter.placed[-1]
    adapter.fact(Answered(target))
    assert adapter.call.a is target
    assert adapter.fact(TimerFired(Timer.TRANSFEROR_GRACE)) == [act.HangUp(caller)]
    assert adapter.call.legs() == [target, callee]


def test_a_failed_transfer_target_gives_the_call_back_to_the_transferor() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(ReferReceived(callee, "sip:carol@127.0.0.1"))
    target = adapter.placed[-1]
    assert adapter.fact(Gone(target, 486)) == [act.StopHoldMusic(), act.Bridge()]
    assert adapter.call.parties() == (caller, callee)
    assert adapter.call.phase is Phase.ANSWERED


def test_a_failed_target_after_the_transferor_left_ends_the_call() -> None:
    adapter, _, callee = answered_call()
    adapter.fact(ReferReceived(callee, "sip:carol@127.0.0.1"))
    target = adapter.placed[-1]
    adapter.fact(Gone(callee, 200))
    adapter.fact(Gone(target, 480))
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_cause, end.hangup_side) == (
        Disposition.ANSWERED, "transfer_failed", HangupSide.SYSTEM)


def test_a_refer_after_the_end_is_refused() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(Gone(callee, 200))
    assert adapter.fact(ReferReceived(caller, "sip:carol@127.0.0.1")) == [
        act.RefuseRefer(603)]


def test_a_second_refer_during_a_transfer_is_refused() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(ReferReceived(callee, "sip:carol@127.0.0.1"))
    assert adapter.fact(ReferReceived(caller, "sip:dave@127.0.0.1")) == [
        act.RefuseRefer(603)]


# From the handset on the other side (issue 14 section 6).


def test_a_blind_transfer_by_the_caller_gives_the_callee_the_target() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(ReferReceived(caller, "<sip:carol@127.0.0.1>"))
    target = adapter.placed[-1]
    assert adapter.call.waiting_party() is callee  # music for the callee while it rings
    assert adapter.call.parties() == (callee, target)
    assert adapter.fact(Gone(caller, 200)) == []  # the transferor leaves: expected
    assert act.TransferAnswered(caller, target) in adapter.fact(Answered(target))
    assert (adapter.call.a, adapter.call.b) == (target, callee)
    adapter.fact(Gone(target, 200))  # the target took the caller's place
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)
    assert adapter.command_names()[-2:] == ["TransferCall", "EndCall"]


def test_the_callee_hanging_up_while_holding_ends_the_call_on_its_side() -> None:
    adapter, caller, callee = answered_call()
    adapter.fact(MediaChanged(callee, Audio.REMOTE_HOLD))
    assert adapter.fact(MediaChanged(caller, Audio.OTHER)) == [act.Bridge()]  # our hold's echo
    assert adapter.call.held_by is callee
    adapter.fact(Gone(callee, 200))
    end = end_of(adapter).end
    assert (end.disposition, end.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLEE)
    assert adapter.command_names()[-2:] == ["HoldCall", "EndCall"]
