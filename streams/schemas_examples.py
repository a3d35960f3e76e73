"""Real published messages for the contract's docs and tests: the application
services (in-memory persistence) run a short story touching every topic, and
the relay's own mapping turns what they stored into CloudEvents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

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
    and one abandoned."""
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


def example_messages() -> list[dict[str, Any]]:
    """The story's messages, calls first, each application's in store order."""
    calls, callcentre = CallService(), CallCentreService()  # in-memory stores
    call_story(calls)
    callcentre_story(callcentre)
    return published(calls) + published(callcentre)
