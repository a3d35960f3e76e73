"""The role Grafana's PostgreSQL datasource logs in as (dialtone/grafana/reader.py), on
a real migrated PostgreSQL: every dashboard query runs as it, and nothing else is
readable: not the identities, the signing key, the webhook secrets nor the SIP
digest hashes, which the database owner compose's datasource used to log in as
could all read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from dialtone.commands.grafana import command as grafana
from dialtone.grafana import dashboards
from dialtone.grafana.reader import grant_reader
from dialtone.settings import Settings
from tests.fixtures.grafana import grafana_sql

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SECRETS = ("SELECT * FROM users", "SELECT * FROM auth_signing_key",
           "SELECT * FROM refresh_tokens", "SELECT * FROM api_keys",
           "SELECT secret FROM webhook_subscriptions", "SELECT ha1 FROM sip_subscribers",
           "SELECT sip_domain FROM tenants", "SELECT * FROM audit_log")


@pytest.fixture
def role(database_url: str) -> Iterator[str]:
    """A role name of this test's own (roles are the server's, not a database's)."""
    name = f"grafana_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def as_role(database_url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(database_url, user=role, password="reader-pw-1"),
                           autocommit=True)


def grant(database_url: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        grant_reader(conn, role, "reader-pw-1")


def test_every_dashboard_query_runs_as_the_reader(database_url: str, role: str) -> None:
    grant(database_url, role)
    now = datetime.now(UTC)
    with as_role(database_url, role) as conn:
        for query in dashboards.SQL_QUERIES:
            text = grafana_sql(query.sql, now - timedelta(hours=6), now, ["default"])
            cursor = conn.execute(text)
            assert cursor.description is not None
            assert tuple(c.name for c in cursor.description) == query.columns, query.sql


def test_the_reader_reads_no_secret_and_writes_nothing(database_url: str, role: str) -> None:
    grant(database_url, role)
    with as_role(database_url, role) as conn:
        for statement in SECRETS:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM cdr")
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


def test_granting_again_takes_back_what_the_dashboards_no_longer_read(
        database_url: str, role: str) -> None:
    grant(database_url, role)
    with psycopg.connect(database_url, autocommit=True) as conn:  # e.g. read by an old list
        conn.execute(sql.SQL("GRANT SELECT ON users TO {}").format(sql.Identifier(role)))
    grant(database_url, role)
    with as_role(database_url, role) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM users")


def test_the_command_takes_its_password_from_the_environment(
        database_url: str, role: str) -> None:
    runner = CliRunner()
    settings = Settings(database_url=database_url)
    refused = runner.invoke(grafana, ["reader", "--role", role], obj=settings, env={})
    done = runner.invoke(grafana, ["reader", "--role", role], obj=settings,
                         env={"DIALTONE_GRAFANA_DB_PASSWORD": "reader-pw-1"})

    assert refused.exit_code == 2
    assert "DIALTONE_GRAFANA_DB_PASSWORD" in refused.output
    assert done.exit_code == 0, done.output
    assert "reader-pw-1" not in done.output
    with as_role(database_url, role) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
        assert conn.execute("SELECT count(*) FROM cdr").fetchone() == (0,)
