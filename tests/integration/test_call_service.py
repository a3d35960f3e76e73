"""CallService on the real PostgreSQL event store: round trips, idempotent
initiate, and group commit (one transaction per batch, all or nothing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from application.calls import CallService
from dialtone.database import eventsourcing_env
from domain.call import (
    Call,
    CallNotFound,
    CallStatus,
    Direction,
    Disposition,
    HangupSide,
    TransferKind,
)
from domain.errors import IllegalTransition

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def service(database_url: str) -> Iterator[CallService]:
    with CallService(env=eventsourcing_env(database_url)) as app:
        yield app


@pytest.fixture
def fresh_service(database_url: str) -> Iterator[CallService]:
    """A second process's view of the same store, with its own empty cache."""
    with CallService(env=eventsourcing_env(database_url)) as app:
        yield app


def initiate(service: CallService, sip_call_id: str) -> UUID:
    return service.initiate_call(caller="+15551230001", callee="2001",
                                 direction=Direction.INBOUND, trunk="carrier-a",
                                 sip_call_id=sip_call_id, occurred_at=T0)


def stored_rows(service: CallService, database_url: str) -> list[tuple[int, UUID, int, str]]:
    """(notification_id, originator_id, version, transaction id) of every stored event."""
    table = service.recorder.events_table_name  # type: ignore[attr-defined]
    query = sql.SQL("SELECT notification_id, originator_id, originator_version, xmin::text "
                    "FROM {} ORDER BY notification_id").format(sql.Identifier(table))
    with psycopg.connect(database_url) as conn:
        return [tuple(row) for row in conn.execute(query).fetchall()]


def full_lifecycle(service: CallService, call_id: UUID) -> None:
    service.route_call(call_id, "agent-7", at(1))
    service.ring_call(call_id, at(2))
    service.answer_call(call_id, at(5))
    service.hold_call(call_id, at(20))
    service.resume_call(call_id, at(35))
    service.transfer_call(call_id, TransferKind.ATTENDED, "2002", at(40))
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                     hangup_side=HangupSide.CALLEE, sip_status=None, occurred_at=at(90))


def test_call_lifecycle_reloads_equal_from_a_fresh_service(
    service: CallService, fresh_service: CallService
) -> None:
    call_id = initiate(service, "lifecycle@pbx")
    full_lifecycle(service, call_id)
    original = service.get_call(call_id)
    reloaded = fresh_service.get_call(call_id)
    assert reloaded == original
    assert reloaded.version == 8
    assert (reloaded.status, reloaded.disposition, reloaded.hold_total, reloaded.target) == (
        CallStatus.ENDED, Disposition.ANSWERED, timedelta(seconds=15), "2002")


def test_initiate_twice_stores_one_call(
    service: CallService, fresh_service: CallService, database_url: str
) -> None:
    first = initiate(service, "retransmitted@pbx")
    again = initiate(service, "retransmitted@pbx")
    from_other_process = initiate(fresh_service, "retransmitted@pbx")
    assert first == again == from_other_process == Call.id_for("retransmitted@pbx")
    assert len(stored_rows(service, database_url)) == 1


def test_repeated_protocol_facts_store_no_events(service: CallService, database_url: str) -> None:
    call_id = initiate(service, "repeats@pbx")
    service.answer_call(call_id, at(5))
    service.answer_call(call_id, at(6))  # retransmitted 200 OK
    for _bye in range(2):  # the second BYE is a repeat
        service.end_call(call_id, disposition=Disposition.ANSWERED,
                         hangup_cause="normal_clearing", hangup_side=HangupSide.CALLER,
                         sip_status=None, occurred_at=at(9))
    assert len(stored_rows(service, database_url)) == 3


def test_batch_saves_every_call_in_one_transaction(
    service: CallService, fresh_service: CallService, database_url: str
) -> None:
    with service.batch() as batch:
        call_ids = [initiate(service, f"batch-{n}@pbx") for n in range(5)]
        for call_id in call_ids:
            service.route_call(call_id, "agent-1", at(1))
            service.ring_call(call_id, at(2))
        assert batch.pending_event_count == 15
        assert stored_rows(service, database_url) == []  # nothing before the block ends

    rows = stored_rows(service, database_url)
    assert [row[0] for row in rows] == list(range(1, 16))
    assert len({row[3] for row in rows}) == 1  # one writing transaction
    for call_id in call_ids:
        assert fresh_service.get_call(call_id).status is CallStatus.RINGING


def test_batch_sees_its_own_staged_changes(service: CallService) -> None:
    with service.batch():
        call_id = initiate(service, "staged@pbx")
        service.answer_call(call_id, at(5))
        assert service.get_call(call_id).status is CallStatus.ANSWERED
        with pytest.raises(IllegalTransition):
            service.ring_call(call_id, at(6))  # refused, the batch goes on
        service.hold_call(call_id, at(7))
    assert service.get_call(call_id).status is CallStatus.HELD


def test_batch_with_a_stale_call_saves_nothing(
    service: CallService, fresh_service: CallService, database_url: str
) -> None:
    shared = initiate(service, "shared@pbx")
    fresh_service.get_call(shared)  # caches version 1
    service.answer_call(shared, at(5))  # another writer stores version 2

    def batch_with_stale_call() -> None:
        with fresh_service.batch():
            initiate(fresh_service, "newcomer@pbx")
            fresh_service.answer_call(shared, at(6))  # also version 2: conflicts

    with pytest.raises(IntegrityError):
        batch_with_stale_call()

    rows = stored_rows(service, database_url)
    assert [(row[1], row[2]) for row in rows] == [(shared, 1), (shared, 2)]
    with pytest.raises(CallNotFound):
        service.get_call(Call.id_for("newcomer@pbx"))
    # The stale cache entry was evicted: the next command sees the stored version 2.
    assert fresh_service.get_call(shared).answered_at == at(5)
    fresh_service.hold_call(shared, at(7))
    assert service.get_call(shared).version == 2  # the writer's own cache, unchanged
    assert fresh_service.get_call(shared).version == 3


def test_exception_inside_a_batch_discards_it(service: CallService, database_url: str) -> None:
    class AdapterError(Exception):
        pass

    def batch_that_fails() -> None:
        with service.batch():
            initiate(service, "discarded@pbx")
            raise AdapterError

    with pytest.raises(AdapterError):
        batch_that_fails()
    assert stored_rows(service, database_url) == []
    with pytest.raises(CallNotFound):
        service.get_call(Call.id_for("discarded@pbx"))


def test_command_on_a_missing_call_fails_with_call_not_found(service: CallService) -> None:
    with pytest.raises(CallNotFound):
        service.answer_call(Call.id_for("never-initiated@pbx"), at(1))


def test_threads_batching_on_one_service_each_commit_their_own_transaction(
    service: CallService, database_url: str
) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for round_ in range(3):
                with service.batch():
                    for k in range(4):
                        call_id = initiate(service, f"w{n}-r{round_}-c{k}@pbx")
                        service.route_call(call_id, f"agent-{n}", at(1))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []

    rows = stored_rows(service, database_url)
    assert [row[0] for row in rows] == list(range(1, 97))
    by_transaction: dict[str, list[int]] = {}
    for notification_id, _, _, xid in rows:
        by_transaction.setdefault(xid, []).append(notification_id)
    assert len(by_transaction) == 4 * 3
    for ids in by_transaction.values():  # each batch is one unbroken run of positions
        assert ids == list(range(ids[0], ids[0] + 8))


def test_retry_of_a_batch_that_is_already_stored_is_refused(
    service: CallService, fresh_service: CallService, database_url: str
) -> None:
    """After an ambiguous commit error the SIP storage thread retries the same
    commands: if the first attempt had committed, the retry must be refused."""
    call_id = initiate(service, "ambiguous@pbx")
    fresh_service.get_call(call_id)

    def answer_in_batch(on: CallService, fail_before_commit: bool = False) -> None:
        with on.batch():
            on.answer_call(call_id, at(5))
            if fail_before_commit:
                raise ConnectionResetError("acknowledgement lost")

    answer_in_batch(fresh_service)  # the attempt that committed (here by a twin)
    with pytest.raises(ConnectionResetError):
        answer_in_batch(service, fail_before_commit=True)
    undone = service.get_call(call_id)  # from this service's cache
    assert (undone.version, undone.status, undone.pending_events) == (1, CallStatus.INITIATED, [])
    with pytest.raises(IntegrityError):
        answer_in_batch(service)  # the retry: version 2 again
    assert [row[2] for row in stored_rows(service, database_url)] == [1, 2]
    # The refusal evicted the call: the next command works on the stored state.
    service.hold_call(call_id, at(9))
    assert [row[2] for row in stored_rows(service, database_url)] == [1, 2, 3]
