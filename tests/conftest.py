"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

With DATABASE_URL set the tests use that server instead of the embedded one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialtone.database import drop_database, ensure_database, with_database
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


def _scratch_database(pg_admin_dsn: str, prefix: str) -> Iterator[str]:
    """A DSN to a brand-new, empty database on the test server, dropped afterwards."""
    dsn = with_database(pg_admin_dsn, f"{prefix}_{uuid.uuid4().hex[:16]}")
    ensure_database(dsn)
    yield dsn
    drop_database(dsn)


@pytest.fixture
def database_url(pg_admin_dsn: str) -> Iterator[str]:
    """A DSN to a brand-new, empty database, dropped after the test."""
    yield from _scratch_database(pg_admin_dsn, "t")


@pytest.fixture
def second_database(pg_admin_dsn: str) -> Iterator[str]:
    """Another brand-new, empty database beside database_url (a restore's target, say),
    dropped after the test."""
    yield from _scratch_database(pg_admin_dsn, "r")


def pytest_collection_finish(session: pytest.Session) -> None:
    note_users(session.items)  # for release_unneeded below


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once the test's own fixtures are torn down (they may still talk to a shared
    server), stop the shared servers no later test uses (tests/fixtures/shared.py)."""
    yield
    release_unneeded(item, nextitem)
