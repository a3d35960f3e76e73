"""The storage thread applies queued commands in order, in batches, exactly once.

Runs against the real CallService on eventsourcing's in-memory persistence; the
database-outage behaviour is proven against PostgreSQL in tests/integration.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.sip.store.storage import StorageThread
from application.calls import CallService
from domain.call import CallStatus, Disposition, HangupSide
from domain.call_commands import (
    AnswerCall,
    CallCommand,
    EndCall,
    HoldCall,
    InitiateCall,
    ResumeCall,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call_commands(sip_call_id: str) -> list[CallCommand]:
    init = InitiateCall.inbound(sip_call_id=sip_call_id, caller="100", callee="200",
                                occurred_at=at(0))
    cid = init.call_id
    return [init, AnswerCall(cid, at(1)), HoldCall(cid, at(2)), ResumeCall(cid, at(3)),
            EndCall(cid, at(4), Disposition.ANSWERED, "normal_clearing", HangupSide.CALLER, 200)]


def test_commands_of_many_calls_are_stored_in_order() -> None:
    service = CallService()
    storage = StorageThread(lambda: service, batch_size=7)
    storage.start()
    calls = [call_commands(f"sip-{i}") for i in range(5)]

    for commands in calls:
        for command in commands:
            storage.put(command)

    assert storage.stop(timeout=10)
    for commands in calls:
        call = service.get_call(commands[0].call_id)
        assert call.status is CallStatus.ENDED
        assert call.hold_count == 1
        assert call.version == 5
    assert storage.stats.applied == 25
    assert storage.stats.batches >= 4


def test_a_command_the_domain_refuses_is_skipped_and_the_rest_stored() -> None:
    service = CallService()
    storage = StorageThread(lambda: service)
    storage.start()
    first = call_commands("sip-a")
    cid = first[0].call_id

    storage.put(first[0])
    storage.put(ResumeCall(cid, at(0.5)))  # not held: refused by the domain
    for command in first[1:]:
        storage.put(command)

    assert storage.stop(timeout=10)
    assert service.get_call(cid).status is CallStatus.ENDED
    assert storage.stats.skipped == 1


def test_new_calls_are_refused_past_the_soft_limit() -> None:
    storage = StorageThread(CallService, soft_limit=3, hard_limit=5)

    for command in call_commands("sip-x"):
        storage.put(command)
    storage.put(call_commands("sip-y")[0])

    assert storage.overloaded
    assert storage.pending == 5
    assert storage.stats.overflow_dropped == 1
