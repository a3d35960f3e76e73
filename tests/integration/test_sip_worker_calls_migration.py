"""``sip_worker_calls`` is made by migration 0013, not by the workers: a worker's
claims work on a migrated database, fail loudly (and create nothing) on one that
is not, and a database an older worker already made the table in takes the
migration unchanged."""

from __future__ import annotations

import logging
import uuid

import psycopg
import pytest
from yoyo import read_migrations
from yoyo.migrations import topological_sort

from adapters.sip.store.lost_calls import UNMIGRATED, CallOwnership
from dialtone.database import MIGRATIONS_DIR
from dialtone.migrations import apply_migrations, migration_dirs

MIGRATION = "0013_sip_worker_calls"

# What workers ran before 0013 (adapters/sip/store/lost_calls.py up to then).
OLD_WORKER_DDL = """
CREATE TABLE IF NOT EXISTS sip_worker_calls (
    call_id uuid PRIMARY KEY,
    worker text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sip_worker_calls_worker ON sip_worker_calls (worker);
"""


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _claims(dsn: str) -> list[tuple[uuid.UUID, str]]:
    with psycopg.connect(dsn) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT call_id, worker FROM sip_worker_calls ORDER BY worker")]


def test_the_migration_makes_the_table_the_workers_claim_calls_in(database_url: str) -> None:
    applied = apply_migrations(database_url)
    assert MIGRATION in applied
    ownership = CallOwnership(database_url, "127.0.0.1:5070")
    one, two = uuid.uuid4(), uuid.uuid4()
    try:
        ownership.claim([one, two])
        assert sorted(_claims(database_url)) == sorted([(one, "127.0.0.1:5070"),
                                                        (two, "127.0.0.1:5070")])
        ownership.release([one])
        assert _claims(database_url) == [(two, "127.0.0.1:5070")]
    finally:
        ownership.close()
    with psycopg.connect(database_url) as conn:
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'sip_worker_calls'")}
    assert "sip_worker_calls_worker" in indexes


def test_a_worker_on_an_unmigrated_database_runs_no_ddl_and_says_to_migrate(
    database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    ownership = CallOwnership(database_url, "127.0.0.1:5070")
    try:
        with caplog.at_level(logging.ERROR, "adapters.sip.store.lost_calls"), \
                pytest.raises(psycopg.errors.UndefinedTable):
            ownership.claim([uuid.uuid4()])
    finally:
        ownership.close()
    assert UNMIGRATED in caplog.text
    assert "sip_worker_calls" not in _tables(database_url)


def test_a_database_an_older_worker_made_the_table_in_takes_the_migration(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(OLD_WORKER_DDL)
        conn.execute("INSERT INTO sip_worker_calls (call_id, worker) VALUES (%s, 'w:1')",
                     (call := uuid.uuid4(),))
    assert MIGRATION in apply_migrations(database_url)
    assert _claims(database_url) == [(call, "w:1")]  # the claims an old worker left stay


def test_both_variant_paths_order_the_migration_after_its_dependency(database_url: str) -> None:
    """The plain path is applied above; the TimescaleDB path is read and ordered as
    yoyo applies it (this server has no timescaledb extension to apply it on)."""
    assert [d.name for d in migration_dirs(database_url)] == ["schema", "plain"]
    for variant in ("plain", "timescale"):
        ids = [m.id for m in topological_sort(read_migrations(
            str(MIGRATIONS_DIR / "schema"), str(MIGRATIONS_DIR / variant)))]
        assert MIGRATION in ids
        assert ids.index("0012_projection_notify") < ids.index(MIGRATION)
