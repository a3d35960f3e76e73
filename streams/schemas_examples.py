"""Real published messages for the contract's docs and tests: the application
services (in-memory persistence) run a short story touching every topic, and
the relay's own mapping turns what they stored into CloudEvents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from application.callcentre import CallCentreService
from application.calls import CallService
from domain.addressing import Target
from domain.call import (
    Call,
    Direction,
    Disposition,
    HangupSide,
    HoldSide,
    SupervisionMode,
    TransferKind,
)
from domain.numbers import DialRule, MatchKind
from domain.routing import RoutingStrategy
from projections.envelope import decode

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def published(app: Application[Any]) -> list[dict[str, Any]]:
    """Every event `app` stored, as the relay publishes it (message values, decoded)."""
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    return [json.loads(e.to_json()) for e in decode(app, notifications)]


def call_story(service: CallService) -> None:
    """A queued call an agent answers, supervised, measured, recorded and ended."""
    call = service.initiate_call(caller="+15550100", callee="800", trunk=None,
                                 direction=Direction.INBOUND, sip_call_id="example@dialtone",
                                 occurred_at=at(0))
    service.route_call(call, "sip:sales@dialtone", at(0.1))
    service.queue_call(call, "sales", at(0.2))
    service.ring_call(call, at(3))
    service.connect_agent(call, "alice", at(5))
    service.answer_call(call, at(5))
    service.hold_call(call, at(30), HoldSide.CALLEE)  # the agent's phone holds
    service.resume_call(call, at(40), HoldSide.CALLEE)
    service.start_supervision(call, "sam", SupervisionMode.WHISPER, at(50))
    service.stop_supervision(call, "sam", at(60))
    service.record_media_quality(call, mos=4.3, jitter_ms=2.5, loss_pct=0.1, rtt_ms=38.0,
                                 occurred_at=at(90))
    service.transfer_call(call, TransferKind.BLIND, "sip:bob@dialtone", at(95))
    service.end_call(call, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                     hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=at(120))
    service.attach_recording(call, "file:///recordings/example.wav", 115.0, at(121))
    key = f"default/2025-03-01/{call}.wav"
    service.store_recording(call, "dialtone-recordings", key, 1_840_044,
                            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                            at(130))
    service.delete_recording(call, "dialtone-recordings", key, "retention", at(90 * 86_400))


def callcentre_story(service: CallCentreService) -> None:
    """Configuration of every kind, then a call offered, answered and wrapped up,
    and one abandoned; later the queue reworked, calls leaving it every other way,
    and the menu, number and dialplan changed: every call-centre event type."""
    queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=at(0)).id
    alice = service.create_agent("alice", "Alice", {"english": 80}, occurred_at=at(0)).id
    service.set_agent_skill(alice, "french", 40, at(1))
    service.remove_agent_skill(alice, "french", at(2))
    service.set_auto_pause(alice, 3, at(2))
    service.add_member(queue, alice, 0, at(3))
    service.update_member(queue, alice, 1, at(3))
    service.configure_queue(queue, lambda q: q.set_service_level(30.0, at(4)))
    service.configure_queue(queue, lambda q: q.set_wrap_up(10.0, at(4)))
    service.login(alice, "sip:alice@dialtone", at(5))
    service.pause(alice, "lunch", at(6))
    service.resume(alice, at(7))
    call = Call.id_for("example@dialtone")
    service.enqueue_call(queue, call, 0, at(10))
    service.offer_call(queue, call, [alice], at(11))
    service.accept_offer(alice, call, at(13))
    service.end_agent_call(alice, call, at(120))
    service.finish_wrap_up(alice, at(130))
    other = Call.id_for("abandoned@dialtone")
    service.enqueue_call(queue, other, 0, at(140))
    service.abandon_call(queue, other, at(150))
    service.logout(alice, at(200))
    menu = service.create_ivr_menu("main", "Main menu", "welcome", occurred_at=at(0),
                                   options={"1": Target.queue(queue)}).id
    service.configure_ivr_menu(menu, lambda m: m.set_prompt("welcome-2", at(1)))
    service.configure_ivr_menu(menu, lambda m: m.set_timeout(8.0, at(1)))
    number = service.create_number("+15550100", Target.ivr(menu), occurred_at=at(0),
                                   label="main line").id
    service.configure_number(number, lambda n: n.relabel("sales line", at(1)))
    rule = DialRule.checked("internal", MatchKind.PREFIX, "2", "sip:{number}@dialtone")
    plan = service.create_dialplan("default", "Default", [rule], occurred_at=at(0)).id
    moved = DialRule.checked("internal", MatchKind.PREFIX, "3", "sip:{number}@dialtone")
    service.configure_dialplan(plan, lambda p: p.change_rule(moved, at(1)))
    _queue_reworked(service, queue)
    _calls_leaving_the_queue(service, queue, alice, menu)
    _routing_changed(service, menu, number, plan, queue)


def _queue_reworked(service: CallCentreService, queue: UUID) -> None:
    """Every queue setting changed once, a skill required then dropped, an overflow set."""
    service.configure_queue(queue, lambda q: q.change_strategy(RoutingStrategy.ROUND_ROBIN,
                                                               at(210)))
    service.configure_queue(queue, lambda q: q.set_offer_timeout(20.0, at(210)))
    service.configure_queue(queue, lambda q: q.set_music_on_hold("jazz", at(210)))
    service.configure_queue(queue, lambda q: q.set_position_announcements(True, at(210)))
    service.configure_queue(queue, lambda q: q.set_short_abandon(10.0, at(210)))
    service.configure_queue(queue, lambda q: q.set_recording(True, at(210)))
    service.configure_queue(queue, lambda q: q.require_skill("english", 50, at(211)))
    service.configure_queue(queue, lambda q: q.drop_skill_requirement("english", at(212)))
    service.set_overflow(queue, 60.0, Target.number("+15550199"), at(213))


def _calls_leaving_the_queue(service: CallCentreService, queue: UUID, alice: UUID,
                             menu: UUID) -> None:
    """Alice back, with Bob: a call ringing both that Bob rejects and she lets ring
    out (requeued) overflows after 60 s, one is transferred to the menu, one hangs
    up while ringing her (her offer cancelled); then she leaves the queue and the
    overflow is cleared."""
    service.login(alice, "sip:alice@dialtone", at(300))
    bob = service.create_agent("bob", "Bob", occurred_at=at(300)).id
    service.add_member(queue, bob, 0, at(300))
    service.login(bob, "sip:bob@dialtone", at(300))
    missed = Call.id_for("missed@dialtone")
    service.enqueue_call(queue, missed, 0, at(310))
    service.offer_call(queue, missed, [alice, bob], at(311))
    service.miss_offer(bob, missed, at(312))
    service.miss_offer(alice, missed, at(331))
    service.overflow_call(queue, missed, at(370))
    moved = Call.id_for("transferred@dialtone")
    service.enqueue_call(queue, moved, 0, at(380))
    service.transfer_call(queue, moved, Target.ivr(menu), at(385))
    hung_up = Call.id_for("hung-up-ringing@dialtone")
    service.enqueue_call(queue, hung_up, 0, at(390))
    service.offer_call(queue, hung_up, [alice], at(391))
    service.abandon_call(queue, hung_up, at(395))
    service.remove_member(queue, alice, at(400))
    service.clear_overflow(queue, at(400))
    service.logout(alice, at(410))


def _routing_changed(service: CallCentreService, menu: UUID, number: UUID, plan: UUID,
                     queue: UUID) -> None:
    """The menu's key 9 added then removed, its retries and default changed; the
    number sent to the queue, deactivated and activated; a dialplan rule added,
    moved first and removed."""
    service.configure_ivr_menu(menu, lambda m: m.set_option("9", Target.repeat(), at(500)))
    service.configure_ivr_menu(menu, lambda m: m.remove_option("9", at(501)))
    service.configure_ivr_menu(menu, lambda m: m.set_max_retries(3, at(501)))
    service.configure_ivr_menu(menu, lambda m: m.set_default_action(Target.queue(queue),
                                                                     at(501)))
    service.configure_number(number, lambda n: n.route_to(Target.queue(queue), at(502)))
    service.configure_number(number, lambda n: n.deactivate(at(503)))
    service.configure_number(number, lambda n: n.activate(at(504)))
    operator = DialRule.checked("operator", MatchKind.EXACT, "0", "sip:operator@dialtone")
    service.configure_dialplan(plan, lambda p: p.add_rule(operator, at(505)))
    service.configure_dialplan(plan, lambda p: p.move_rule("operator", 0, at(505)))
    service.configure_dialplan(plan, lambda p: p.remove_rule("operator", at(506)))


def example_messages() -> list[dict[str, Any]]:
    """The story's messages, calls first, each application's in store order."""
    calls, callcentre = CallService(), CallCentreService()  # in-memory stores
    call_story(calls)
    callcentre_story(callcentre)
    return published(calls) + published(callcentre)
