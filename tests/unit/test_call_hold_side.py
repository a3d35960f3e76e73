"""Which side held (issue 14): Call.Held and Call.Resumed say whose phone put the
call on hold and took it off, from the flow that saw the re-INVITE through the
command values and the aggregate to the published event. ``side`` is a new
optional field within version 1: events stored before it read back (and are
published) as they were, and read as ``unknown``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import jsonschema
import pytest
from eventsourcing.application import Application

from application.b2bua import actions as act
from application.b2bua.consultation import Consultation
from application.b2bua.legs import Audio, MediaChanged
from application.calls import CallService
from domain.call import Call, Direction, HoldSide
from domain.call_commands import HoldCall, ResumeCall
from domain.errors import InvalidValue
from projections.calls import fold
from projections.envelope import to_envelope
from streams.schemas import event_classes
from tests.unit.b2bua_fakes import Clock, FakeLeg
from tests.unit.test_b2bua_plain_call import answered_call

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
SCHEMA = json.loads((Path(__file__).resolve().parents[2]
                     / "docs/schemas/dialtone.calls.v1.schema.json").read_text())


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered(sip_call_id: str = "side@pbx") -> Call:
    call = Call.initiate(caller="1001", callee="2001", direction=Direction.INBOUND, trunk=None,
                         sip_call_id=sip_call_id, occurred_at=T0)
    call.answer(at(1))
    return call


def new_events(call: Call) -> list[Any]:
    return list(call.collect_events())


# The aggregate.


@pytest.mark.parametrize("side", [HoldSide.CALLER, HoldSide.CALLEE])
def test_held_and_resumed_record_the_side(side: HoldSide) -> None:
    call = answered()
    call.hold(at(2), side)
    call.resume(at(3), side)
    held, resumed = new_events(call)[-2:]
    assert (type(held), held.side) == (Call.Held, side.value)
    assert (type(resumed), resumed.side) == (Call.Resumed, side.value)


def test_a_hold_that_does_not_say_its_side_is_unknown() -> None:
    call = answered()
    call.hold(at(2))
    assert new_events(call)[-1].side == "unknown"


def test_a_side_that_is_not_a_side_is_refused() -> None:
    call = answered()
    with pytest.raises(InvalidValue):
        call.hold(at(2), "agent")  # type: ignore[arg-type]
    assert call.hold_count == 0


# Stored before the side was recorded.


def _store_without_side(call: Call) -> Application[UUID]:
    """An application whose store holds ``call``'s events with Held/Resumed as
    version 1 wrote them before ``side`` existed."""
    app: Application[UUID] = Application()
    app.save(call)
    old = []
    for stored in app.recorder.select_events(call.id):
        state = app.mapper.transcoder.decode(stored.state)
        state.pop("side", None)
        old.append(type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                                app.mapper.transcoder.encode(state)))
    fresh: Application[UUID] = Application()
    fresh.recorder.insert_events(old)
    return fresh


def test_a_hold_stored_before_the_side_loads_as_unknown_and_publishes_as_before() -> None:
    call = answered()
    call.hold(at(2), HoldSide.CALLER)
    call.resume(at(12), HoldSide.CALLER)
    app = _store_without_side(call)

    loaded: object = app.repository.get(call.id)
    assert isinstance(loaded, Call)
    assert (loaded.hold_count, loaded.hold_total) == (1, timedelta(seconds=10))
    held, resumed = list(app.events.get(call.id))[-2:]
    assert isinstance(held, Call.Held)
    assert isinstance(resumed, Call.Resumed)
    assert (held.side, resumed.side) == ("unknown", "unknown")

    envelopes = [to_envelope(e, position) for position, e in
                 enumerate(app.events.get(call.id), 1)]
    assert [e.type for e in envelopes[-2:]] == ["dialtone.call.held.v1",
                                                "dialtone.call.resumed.v1"]
    assert envelopes[-2].data == {}  # published as stored: no side made up
    for envelope in envelopes:
        jsonschema.validate(envelope.to_cloudevent(), SCHEMA)
    view = fold(envelopes)  # the CDR counts the hold as before
    assert view is not None
    assert (view.hold_count, view.hold_s) == (1, 10.0)


def test_the_published_held_carries_the_side_and_keeps_its_type() -> None:
    call = answered()
    call.hold(at(2), HoldSide.CALLEE)
    app: Application[UUID] = Application()
    app.save(call)
    envelope = to_envelope(list(app.events.get(call.id))[-1], 3)
    assert (envelope.type, envelope.data) == ("dialtone.call.held.v1", {"side": "callee"})
    jsonschema.validate(envelope.to_cloudevent(), SCHEMA)
    [held] = [e for e in event_classes("call") if e.name == "held"]
    assert held.version == 1  # a new optional field, not a new event version


# The command values and the service.


def test_the_service_takes_the_side_after_occurred_at_or_by_keyword() -> None:
    service = CallService()
    call_id = service.initiate_call(caller="1", callee="2", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id="svc@pbx", occurred_at=T0)
    service.answer_call(call_id, at(1))
    service.hold_call(call_id, at(2), HoldSide.CALLER)
    service.resume_call(call_id, at(3), side=HoldSide.CALLER)
    service.hold_call(call_id, at(4))  # as earlier callers do: unknown
    sides = [getattr(e, "side", None) for e in service.events.get(call_id)][-3:]
    assert sides == ["caller", "caller", "unknown"]
    assert HoldCall(call_id, at(2)) != HoldCall(call_id, at(2), HoldSide.CALLEE)


# The flows.


def _hold_commands(commands: Sequence[object]) -> list[tuple[str, HoldSide]]:
    return [(type(c).__name__, c.side) for c in commands
            if isinstance(c, HoldCall | ResumeCall)]


def test_the_flow_says_the_callee_held_and_resumed() -> None:
    adapter, _caller, callee = answered_call()
    adapter.fact(MediaChanged(callee, Audio.REMOTE_HOLD))
    adapter.fact(MediaChanged(callee, Audio.ACTIVE))
    assert _hold_commands(adapter.commands) == [("HoldCall", HoldSide.CALLEE),
                                                ("ResumeCall", HoldSide.CALLEE)]


def test_the_flow_says_the_caller_held_and_resumed() -> None:
    adapter, caller, _callee = answered_call()
    adapter.fact(MediaChanged(caller, Audio.REMOTE_HOLD))
    adapter.fact(MediaChanged(caller, Audio.ACTIVE))
    assert _hold_commands(adapter.commands) == [("HoldCall", HoldSide.CALLER),
                                                ("ResumeCall", HoldSide.CALLER)]


def test_a_consultation_holds_and_resumes_on_the_agents_side() -> None:
    consultation: Consultation[FakeLeg] = Consultation(uuid4(), Clock())
    started = consultation.start("number:2002", FakeLeg("consulted"))
    ended = consultation.consulted_gone()
    commands = [a.command for a in [*started, *ended] if isinstance(a, act.Emit)]
    assert _hold_commands(commands) == [("HoldCall", HoldSide.CALLEE),
                                        ("ResumeCall", HoldSide.CALLEE)]
