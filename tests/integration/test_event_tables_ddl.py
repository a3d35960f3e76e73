"""Processes started together on one event store do not run its DDL against each other.

eventsourcing's create_table runs ``CREATE OR REPLACE FUNCTION`` even when everything
exists; two processes doing it at once collide on the same catalog row and one fails
with ``tuple concurrently updated`` (the demo's B2BUA workers logged "event store
unavailable" at start). A parent that created the tables tells its children so
(``EVENT_TABLES_READY``) and they run no DDL. Here another session holds that row
(its own CREATE OR REPLACE, uncommitted), as a sibling starting at that instant would.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from application.calls import CallService
from dialtone.database import EVENT_TABLES_READY, eventsourcing_env


def _start_service(database_url: str, errors: list[BaseException]) -> None:
    try:
        CallService(env=eventsourcing_env(database_url)).close()
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
        starting = threading.Thread(target=_start_service, args=(database_url, errors))
        starting.start()
        starting.join(30)  # bounded: with DDL it would wait on the sibling's row lock
        finished_while_sibling_busy = not starting.is_alive()
        sibling.commit()
    starting.join(30)
    assert finished_while_sibling_busy, "the process ran the DDL and waited on its sibling"
    assert not errors, errors
