"""Migration 0025 removes the position rows a Faust worker named after the set of
partitions a batch spanned (one for every set ever batched together), and keeps
the rows of the sources that still move: the store's and single partitions."""

from __future__ import annotations

import psycopg
from yoyo import get_backend, read_migrations

from dialtone.migrations import apply_migrations, migration_dirs, yoyo_url

MIGRATION = "0025_kafka_partition_sources"
KEPT = ["store:CallService", "t1.dialtone.calls.v1:3"]
GONE = ["kafka:t1.dialtone.queues.v1:0,t1.dialtone.queues.v1:7",
        "kafka:t1.dialtone.calls.v1:1,t1.dialtone.calls.v1:2,t1.dialtone.calls.v1:11"]


def _apply_all_but_the_migration(dsn: str) -> None:
    backend = get_backend(yoyo_url(dsn))
    migrations = read_migrations(*(str(d) for d in migration_dirs(dsn)))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(
            migrations.filter(lambda m: m.id != MIGRATION)))


def test_the_rows_named_after_sets_of_partitions_go_and_the_moving_sources_stay(
        database_url: str) -> None:
    _apply_all_but_the_migration(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for source in KEPT + GONE:
            conn.execute("INSERT INTO projection_positions (projection, source, position)"
                         " VALUES ('cdr', %s, 7)", (source,))

    assert MIGRATION in apply_migrations(database_url)

    with psycopg.connect(database_url) as conn:
        left = {r[0] for r in conn.execute("SELECT source FROM projection_positions")}
    assert left == set(KEPT)
