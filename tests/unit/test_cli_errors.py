"""What the console script tells an operator instead of a traceback when it cannot reach
its database: one line, no password (tests/integration/test_cli_unreachable.py runs it)."""

from __future__ import annotations

import psycopg
import pytest
from eventsourcing import persistence

from dialtone.cli import database_unreachable, describe
from dialtone.services.postgres import EmbeddedPostgresError


def test_connection_failures_are_the_database_unreachable() -> None:
    refused = psycopg.OperationalError("connection failed: Connection refused")
    wrapped = persistence.OperationalError("lost")
    wrapped.__cause__ = refused
    assert database_unreachable(refused)
    assert database_unreachable(wrapped)
    assert database_unreachable(EmbeddedPostgresError("pg_ctl start failed (1):\nbusy"))
    assert database_unreachable(psycopg.errors.InvalidPassword("password authentication failed"))


def test_a_statement_failing_on_a_working_connection_is_not() -> None:
    assert not database_unreachable(psycopg.errors.QueryCanceled("statement timeout"))
    assert not database_unreachable(psycopg.errors.LockNotAvailable("lock timeout"))
    assert not database_unreachable(ConnectionRefusedError(111, "not asyncpg's"))
    assert not database_unreachable(ValueError("a bug"))


def test_the_description_is_one_line_without_a_password(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("DATABASE_URL", "host=db user=dialtone password=pl41n-s3cret")
    told = describe(EmbeddedPostgresError(
        "initdb failed (1):\nno space\n--- server log ---\nline 1\nline 2"))
    assert told == "initdb failed (1): no space"
    assert describe(psycopg.OperationalError(
        "bad: postgresql://u:url-s3cret@db/x, password=kv-s3cret and pl41n-s3cret")) == (
        "bad: postgresql://u:***@db/x, password=*** and ***")
    assert describe(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")) == (
        "Connection refused: Connect call failed ('127.0.0.1', 1)")

