"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

With DATABASE_URL set the tests use that server instead of the embedded one.

Migrating a database takes yoyo about a second on the CI machine (it parses and runs
every SQL file), and most integration tests start by migrating theirs. A module
whose tests all do so carries ``pytestmark = pytest.mark.migrated_database``: its
``database_url`` is then a copy (CREATE DATABASE ... TEMPLATE, a file copy) of one
database migrated once per session by the same ``apply_migrations``, so the tests'
own ``apply_migrations`` calls find nothing left to apply. Tests about migrating
itself, or about an unmigrated database, stay in unmarked modules.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from dialtone.services.postgres import EmbeddedPostgres, free_port
from tests.fixtures.shared import note_users, release_unneeded

pytest_plugins = ["tests.fixtures.sip", "tests.fixtures.kafka", "tests.fixtures.processes",
                  "tests.fixtures.matrix_stack", "tests.fixtures.tracing",
                  "tests.fixtures.kamailio"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    # Not under pytest's temp root: every new pytest session resets that root to
    # mode 0700, which would lock the server's unprivileged user out of its data.
    root = Path(tempfile.mkdtemp(prefix="dialtone-test-pg-"))
    server = EmbeddedPostgres(root / "data", free_port())
    server.start()
    yield server
    server.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_scratch_dir() -> Iterator[Path]:
    """A directory for a test's own PostgreSQL server, outside pytest's temp root
    (which another pytest session may chmod 0700 at any time, see pg_server)."""
    root = Path(tempfile.mkdtemp(prefix="dialtone-test-own-pg-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_server: EmbeddedPostgres | None) -> str:
    if pg_server is None:
        return os.environ["DATABASE_URL"]
    return pg_server.dsn("postgres")


def _scratch_database(pg_admin_dsn: str, prefix: str, template: str | None = None
                      ) -> Iterator[str]:
    """A DSN to a brand-new database on the test server (empty, or a copy of the
    database `template`), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    dsn = with_database(pg_admin_dsn, name)
    if template is None:
        ensure_database(dsn)
    else:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn: str) -> Iterator[str]:
    """The name of a database migrated once per session: the template of the
    ``migrated_database`` tests' own databases (see the module's docstring)."""
    name = f"template_{uuid.uuid4().hex[:16]}"
    dsn = with_database(pg_admin_dsn, name)
    ensure_database(dsn)
    apply_migrations(dsn)
    # yoyo's backend keeps its connection open until it is collected, and PostgreSQL
    # copies no database that has a session open on it.
    gc.collect()
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    yield name
    drop_database(dsn)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, pg_admin_dsn: str) -> Iterator[str]:
    """A DSN to a brand-new database, dropped after the test: empty, or already
    migrated in a module marked ``migrated_database``."""
    template = None
    if request.node.get_closest_marker("migrated_database") is not None:
        template = request.getfixturevalue("migrated_template")
    yield from _scratch_database(pg_admin_dsn, "t", template)


@pytest.fixture
def second_database(pg_admin_dsn: str) -> Iterator[str]:
    """Another brand-new, empty database beside database_url (a restore's target, say),
    dropped after the test."""
    yield from _scratch_database(pg_admin_dsn, "r")


# Run apart from the parallel group although PostgreSQL is all it needs: a time budget
# (sharing the cores would leave Schemathesis fewer examples in the same time).
NOT_PARALLEL = {"tests/integration/test_api_contract.py"}
# Servers and processes the serial run keeps to itself, whatever a test's module says.
SERIAL_FIXTURES = {"kafka_broker", "kafka_bootstrap", "sipp", "b2bua", "kamailio",
                   "dialtone_processes", "pg_scratch_dir", "restartable"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``parallel`` the tests ./dev test runs on both cores (pytest-xdist, see
    run_tests in ./dev): the unit tests, and the ``migrated_database`` modules' tests,
    which use nothing but their own database on the session's PostgreSQL (each xdist
    worker has its own server). Everything that starts SIP, Kafka or dialtone
    processes, or measures time, stays in the serial run."""
    root = Path(__file__).resolve().parent.parent
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where in NOT_PARALLEL or item.get_closest_marker("kafka") \
                or item.get_closest_marker("sip") \
                or SERIAL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            continue
        if where.startswith("tests/unit/") or item.get_closest_marker("migrated_database"):
            item.add_marker(pytest.mark.parallel)


def pytest_collection_finish(session: pytest.Session) -> None:
    note_users(session.items)  # for release_unneeded below


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once the test's own fixtures are torn down (they may still talk to a shared
    server), stop the shared servers no later test uses (tests/fixtures/shared.py)."""
    yield
    release_unneeded(item, nextitem)
