"""The storage thread's exactly-once promise against real PostgreSQL, with the one
fault that cannot be provoked on demand from outside: a commit that succeeded
but whose acknowledgement was lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from adapters.sip.store.storage import StorageThread
from application.calls import CallService
from dialtone.database import eventsourcing_env
from domain.call import Disposition, HangupSide
from domain.call_commands import (
    AnswerCall,
    CallCommand,
    EndCall,
    HoldCall,
    InitiateCall,
    ResumeCall,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def history(sip_call_id: str) -> list[CallCommand]:
    init = InitiateCall.inbound(sip_call_id=sip_call_id, caller="100", callee="200",
                                occurred_at=T0)
    cid = init.call_id

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    return [init, AnswerCall(cid, at(1)), HoldCall(cid, at(2)), ResumeCall(cid, at(3)),
            HoldCall(cid, at(4)), ResumeCall(cid, at(5)),
            EndCall(cid, at(6), Disposition.ANSWERED, "normal_clearing", HangupSide.CALLER, 200)]


def lose_first_commit_ack(service: CallService) -> list[int]:
    """Make the first insert commit, then report a connection error, as a
    database that dies between COMMIT and its reply would."""
    real: Callable[..., Any] = service.recorder.insert_events
    calls: list[int] = []

    def insert_events(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("connection lost after COMMIT")
        return result

    service.recorder.insert_events = insert_events  # type: ignore[method-assign]  # fault injection
    return calls


def test_a_batch_committed_without_acknowledgement_is_not_applied_twice(
    database_url: str,
) -> None:
    service = CallService(env=eventsourcing_env(database_url))
    inserts = lose_first_commit_ack(service)
    storage = StorageThread(lambda: service, batch_size=100)
    commands = history("lost-ack")
    for command in commands:
        storage.put(command)

    storage.start()

    assert storage.stop(timeout=20)
    assert storage.stats.duplicates_dropped == len(commands)
    assert len(inserts) == 1, "the batch must not be inserted a second time"
    reader = CallService(env=eventsourcing_env(database_url))
    call = reader.get_call(commands[0].call_id)
    assert call.version == len(commands)
    assert call.hold_count == 2
    reader.close()
    service.close()


def test_a_lost_acknowledgement_on_a_call_in_progress_adds_no_hold_twice(
    database_url: str,
) -> None:
    service = CallService(env=eventsourcing_env(database_url))
    storage = StorageThread(lambda: service, batch_size=100)
    commands = history("in-progress")
    storage.start()
    for command in commands[:2]:  # initiated and answered, committed normally
        storage.put(command)
    assert storage.wait_idle(10)

    inserts = lose_first_commit_ack(service)
    for command in commands[2:]:
        storage.put(command)

    assert storage.stop(timeout=20)
    # The thread may take the five commands in one batch or several; only the
    # batch hit by the lost acknowledgement is dropped, and nothing is doubled.
    assert storage.stats.duplicates_dropped >= 1
    assert inserts
    reader = CallService(env=eventsourcing_env(database_url))
    call = reader.get_call(commands[0].call_id)
    assert call.version == len(commands)
    assert call.hold_count == 2
    reader.close()
    service.close()
