"""The storage thread links the events it stored for an API command (a supervisor
joining, a transfer) to that command's audit row, on real PostgreSQL: exactly
those events' positions, onto exactly that row, also when the row is written
after the events were stored; a row that never comes is given up, not waited on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.sip.store.audit_links import AuditLinks
from adapters.sip.store.storage import StorageThread
from application.call_control import AuditLink
from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from domain.call import SupervisionMode, TransferKind
from domain.call_commands import AnswerCall, HoldCall, InitiateCall, StartSupervision, TransferCall

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture
def storage(migrated: str) -> Iterator[tuple[StorageThread, CallService]]:
    service = CallService(env=eventsourcing_env(migrated))
    thread = StorageThread(lambda: service, batch_size=100)
    thread.start()
    yield thread, service
    thread.stop(timeout=10)
    service.close()


def audit_row(dsn: str, link: AuditLink, action: str = "supervision.start") -> int:
    """The row the API writes for a control command (api.auth.audit), its id."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO audit_log (tenant, actor, actor_kind, action, outcome, aggregate_id, "
            "request_id, detail) VALUES ('default', 'user-7', 'user', %s, 'ok', %s, %s, "
            "%s::jsonb) RETURNING id",
            (action, link.call_id, link.request_id,
             json.dumps({"control": link.control_id, "status": 202}))).fetchone()
    assert row is not None
    return int(row[0])


def linked(dsn: str, row_id: int) -> tuple[str | None, list[int]]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT event_store, positions FROM audit_log WHERE id = %s",
                           (row_id,)).fetchone()
    assert row is not None
    return row[0], list(row[1])


def positions_of(service: CallService, call_id: UUID, kinds: tuple[str, ...]) -> list[int]:
    """The store positions of the call's events of these kinds (topic suffixes)."""
    found = service.recorder.select_notifications(start=1, limit=1000)
    return [n.id for n in found if n.originator_id == call_id and n.topic.endswith(kinds)]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def a_call(sip_call_id: str) -> tuple[UUID, list[Any]]:
    init = InitiateCall.inbound(sip_call_id=sip_call_id, caller="100", callee="5000",
                                occurred_at=at(0))
    return init.call_id, [init, AnswerCall(init.call_id, at(1))]


def test_the_events_a_control_request_caused_are_linked_to_its_audit_row_only(
    storage: tuple[StorageThread, CallService], migrated: str,
) -> None:
    thread, service = storage
    call_id, commands = a_call("linked@test")
    link = AuditLink(call_id, uuid.uuid4().hex, "monitor-by-sam-1")
    row = audit_row(migrated, link)
    # The same X-Request-ID reused by the client for another command on the call.
    other = audit_row(migrated, AuditLink(call_id, uuid.uuid4().hex, "monitor-by-sam-1"))
    for command in [*commands,
                    StartSupervision(call_id, at(2), "sam", SupervisionMode.MONITOR, cause=link),
                    HoldCall(call_id, at(3))]:  # no cause: the agent's own hold
        thread.put(command)

    store, positions = wait_for(lambda: linked(migrated, row)[1] and linked(migrated, row),
                                "the audit row linked")

    assert (store, positions) == (CallService.name,
                                  positions_of(service, call_id, ("SupervisionStarted",)))
    assert linked(migrated, other) == (None, [])


def test_a_row_written_after_the_events_were_stored_is_linked_once_it_is_there(
    storage: tuple[StorageThread, CallService], migrated: str,
) -> None:
    thread, service = storage
    call_id, commands = a_call("late-row@test")
    link = AuditLink(call_id, uuid.uuid4().hex, "transfer-1")
    transfer = TransferCall(call_id, at(2), TransferKind.BLIND, "queue:support", cause=link)
    for command in [*commands, transfer]:
        thread.put(command)
    assert thread.wait_idle(20)
    assert positions_of(service, call_id, ("Transferred",))  # stored, not linked yet

    row = audit_row(migrated, link, "transfers.start")  # the API answers a moment later

    wait_for(lambda: linked(migrated, row)[1], "the late audit row linked")
    assert linked(migrated, row) == (CallService.name,
                                     positions_of(service, call_id, ("Transferred",)))


def test_a_link_whose_row_never_comes_is_given_up(migrated: str) -> None:
    links = AuditLinks(lambda: psycopg.connect(migrated, autocommit=True), wait_s=0.5,
                       retry_s=0.05)
    links.add(AuditLink(uuid.uuid4(), "nobody", "rq-none"), CallService.name, [1, 2])
    try:
        wait_for(lambda: links.lost == 1, "the link given up")
        assert links.linked == 0
    finally:
        links.stop()


def test_a_link_that_cannot_be_handed_over_never_stops_the_storage_thread(
    storage: tuple[StorageThread, CallService], migrated: str,
) -> None:
    thread, service = storage

    def broken(*_args: Any) -> None:
        raise RuntimeError("links broken")

    thread.links.add = broken  # type: ignore[method-assign,assignment]  # fault injection
    call_id, commands = a_call("broken-link@test")
    link = AuditLink(call_id, uuid.uuid4().hex, "monitor-2")
    thread.put(commands[0])
    thread.put(commands[1])
    thread.put(StartSupervision(call_id, at(2), "sam", SupervisionMode.MONITOR, cause=link))
    assert thread.wait_idle(20)
    later, more = a_call("after-broken-link@test")
    for command in more:
        thread.put(command)

    assert thread.wait_idle(20)
    assert positions_of(service, call_id, ("SupervisionStarted",))
    assert service.get_call(later).was_answered
