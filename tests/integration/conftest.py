"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dialtone.database import ensure_database
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from tests.integration.k8s_support import TARGETS, kustomize_build


@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    """deploy/k8s's base and overlays as kustomize renders them, by target. Once a
    session rather than once a module: three test_k8s_* modules read the same text
    (0.6 s of kustomize), and none changes it (they parse their own copies)."""
    return {target: kustomize_build(target) for target in TARGETS}


@pytest.fixture
def embedded(pg_server: EmbeddedPostgres | None) -> EmbeddedPostgres:
    """The session's own server, for a test that stops it under a running worker
    (the worker's DSN is the shared one, so a server of the test's own will not do)."""
    if pg_server is None:
        pytest.skip("DATABASE_URL names an external server: this test must not stop it")
    return pg_server


@pytest.fixture
def own_postgres(pg_scratch_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A running server of this test's own: killing or stopping it disturbs no other test."""
    own = EmbeddedPostgres(pg_scratch_dir / "pg", free_port())
    own.start()
    try:
        yield own
    finally:
        own.destroy()


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
