"""Processes started together on one event store do not run its DDL against each other.

eventsourcing's create_table runs ``CREATE OR REPLACE FUNCTION`` even when everything
exists; two processes doing it at once collide on the same catalog row and one fails
with ``tuple concurrently updated`` (the demo's B2BUA workers logged "event store
unavailable" at start). A parent that created the tables tells its children so
(``EVENT_TABLES_READY``) and they run no DDL. Here another session holds that row
(its own CREATE OR REPLACE, uncommitted), as a sibling starting at that instant would.

Processes started on their own (a relay and a worker on a new database, the CI
failure of stop 20) create the schema in turn under an advisory lock
(dialtone.event_store_ddl): neither fails on the other's CREATE TYPE.
"""

from __future__ import annotations

import threading
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import EVENT_TABLES_READY, eventsourcing_env


def _start(database_url: str, errors: list[BaseException], *services: type[Application[UUID]],
           gate: threading.Barrier | None = None) -> None:
    """Start and close each of `services` on the database, as a process starting would."""
    try:
        if gate is not None:
            gate.wait(30)
        for service in services:
            service(env=eventsourcing_env(database_url)).close()
    except BaseException as error:  # reported to the test thread
        errors.append(error)


def test_a_process_told_the_tables_exist_runs_no_ddl_against_its_siblings(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    CallService(env=eventsourcing_env(database_url)).close()  # the parent creates them
    monkeypatch.setenv(EVENT_TABLES_READY, "1")  # as up and demo set for their workers

    errors: list[BaseException] = []
    with psycopg.connect(database_url) as sibling:  # a transaction left open
        definition = sibling.execute(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
            "WHERE p.proname LIKE 'es_insert_events_%' LIMIT 1").fetchone()
        assert definition is not None
        sibling.execute(definition[0])  # CREATE OR REPLACE FUNCTION, not committed yet
        starting = threading.Thread(target=_start, args=(database_url, errors, CallService))
        starting.start()
        starting.join(30)  # bounded: with DDL it would wait on the sibling's row lock
        finished_while_sibling_busy = not starting.is_alive()
        sibling.commit()
    starting.join(30)
    assert finished_while_sibling_busy, "the process ran the DDL and waited on its sibling"
    assert not errors, errors


def test_services_starting_at_once_on_a_new_database_each_find_or_make_the_tables(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(EVENT_TABLES_READY, raising=False)  # nobody made them first
    errors: list[BaseException] = []
    gate = threading.Barrier(6)
    starting = [threading.Thread(target=_start, args=(database_url, errors, CallService,
                                                      CallCentreService), kwargs={"gate": gate})
                for _ in range(6)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join(60)
    assert not any(thread.is_alive() for thread in starting), "a service never started"
    assert not errors, errors
    with psycopg.connect(database_url) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE '%service_events'")}
    assert tables == {"callservice_events", "callcentreservice_events"}


def test_a_service_whose_tables_exist_starts_while_another_service_s_table_is_locked(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process whose DDL waits on a locked table (here: the call centre's, held by
    a long transaction) holds the DDL turn; a service whose own tables exist must
    not queue behind it (a stopping B2BUA worker could not store its calls' ends)."""
    monkeypatch.delenv(EVENT_TABLES_READY, raising=False)
    for service in (CallService, CallCentreService):
        service(env=eventsourcing_env(database_url)).close()
    errors: list[BaseException] = []
    with psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE callcentreservice_events IN ACCESS EXCLUSIVE MODE")
        blocked = threading.Thread(target=_start, args=(database_url, [], CallCentreService),
                                   daemon=True)  # its DDL (if any) waits on the lock
        blocked.start()
        blocked.join(2)
        starting = threading.Thread(target=_start, args=(database_url, errors, CallService))
        starting.start()
        starting.join(30)
        started_while_locked = not starting.is_alive()
        holder.rollback()
    starting.join(30)
    blocked.join(30)
    assert started_while_locked, "the call service waited on the call centre's table"
    assert not errors, errors
