"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dialtone.database import ensure_database
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres


@pytest.fixture
def restartable(
    pg_server: EmbeddedPostgres | None, database_url: str, pg_scratch_dir: Path
) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A server this test may stop and start, and a database on it. The shared
    session server when the tests run on it (it is running again afterwards);
    with DATABASE_URL set, an embedded server of the test's own."""
    if pg_server is not None:
        try:
            yield pg_server, database_url
        finally:
            pg_server.start()
        return
    own = EmbeddedPostgres(pg_scratch_dir / "pg", free_port())
    own.start()
    try:
        dsn = own.dsn("api_health")
        ensure_database(dsn)
        yield own, dsn
    finally:
        own.destroy()
