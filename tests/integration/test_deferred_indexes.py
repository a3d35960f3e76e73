"""The indexes a first pass builds at its end (streams/deferred_indexes.py), on a real
PostgreSQL: the call-centre group's apply never reads them, a rebuild runs without
them and swaps in tables that have them as the migrations made them, and a pass that
fails does not spend time building them."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest

from projections import callcentre
from projections.envelope import EventEnvelope
from projections.registry import ApplyBatch, tables
from streams import deferred_indexes
from streams.deferred_indexes import deferred
from streams.history import read_history
from streams.rebuild import replay_group
from tests.integration.test_rebuild_swap import fresh, generated, project

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy
__all__ = ["fresh"]  # the fixture, used by name

DEFERRED = sorted(callcentre.GROUP.deferred_indexes)


def definitions(conn: psycopg.Connection[Any], schema: str = "public") -> dict[str, str]:
    """Each index of the group's tables in ``schema``: its definition."""
    return dict(conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"
        " AND tablename = ANY(%s)", (schema, list(tables(callcentre.GROUP)))).fetchall())


def test_every_deferred_index_is_a_plain_index_of_the_group_tables(
        fresh: Callable[[], str]) -> None:
    with psycopg.connect(fresh()) as conn:
        plain = {name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique",
            ([f"public.{t}" for t in tables(callcentre.GROUP)],)).fetchall()}
    assert set(DEFERRED) <= plain


def test_the_group_apply_never_reads_a_deferred_index(fresh: Callable[[], str]) -> None:
    database_url = fresh()
    history = generated(1500)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for page in read_history(history.service, page_size=50):  # as the live runner
            callcentre.apply_batch(conn, page, "store:test")  # (the refresh comes after)
        conn.execute("SELECT pg_stat_force_next_flush()")
        scans: dict[str, int] = dict(conn.execute(
            "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes"
            " WHERE indexrelname = ANY(%s)", (DEFERRED,)).fetchall())
        keys = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes"
                            " WHERE indexrelname = 'callcentre_events_pkey'").fetchone()
    assert keys is not None
    assert keys[0] > 0  # the statistics were flushed: the apply's own lookups are counted
    assert scans == dict.fromkeys(DEFERRED, 0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_rebuild_applies_without_them_and_swaps_them_in_as_migrated(
        fresh: Callable[[], str], jobs: int) -> None:
    database_url = fresh()
    history = generated(1500)
    project(database_url, history)
    with psycopg.connect(database_url) as conn:
        migrated = definitions(conn)
    applied = multiprocessing.Value("i", 0)  # shared with the shards' processes

    def spy(inner: ApplyBatch) -> ApplyBatch:
        def apply(conn: psycopg.Connection[Any], batch: Sequence[EventEnvelope],
                  source: str) -> int:
            present = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname ="
                                   " current_schema() AND indexname = ANY(%s)", (DEFERRED,))
            assert not present.fetchall()  # raised in the rebuild's caller, from a shard too
            with applied.get_lock():
                applied.value += 1
            return inner(conn, batch, source)
        return apply

    assert callcentre.GROUP.apply_fresh is not None  # what a first pass applies with
    group = dataclasses.replace(callcentre.GROUP, apply=spy(callcentre.GROUP.apply),
                                apply_fresh=spy(callcentre.GROUP.apply_fresh))
    replay_group(history.service, database_url, group, jobs=jobs)
    with psycopg.connect(database_url) as conn:
        assert definitions(conn) == migrated
    assert applied.value > 0


class PassError(Exception):
    pass


def test_a_pass_that_fails_leaves_them_unbuilt(fresh: Callable[[], str]) -> None:
    database_url = fresh()

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(database_url, autocommit=True)

    with pytest.raises(PassError), deferred(connect, DEFERRED, 2):
        raise PassError
    with connect() as conn:
        left = definitions(conn)
    assert not set(DEFERRED) & set(left)
    assert "callcentre_events_pkey" in left


def test_they_are_built_longest_first(fresh: Callable[[], str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """GiST builds first, then B-trees by their table's size, BRIN last: no connection
    is left with a long build while the others are done."""
    database_url = fresh()
    project(database_url, generated(600))
    built: list[list[str]] = []
    monkeypatch.setattr(deferred_indexes, "run",
                        lambda _connect, statements, _jobs: built.append(list(statements)))

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(database_url, autocommit=True)

    with deferred(connect, DEFERRED, 2):
        pass
    with connect() as conn:
        sizes: dict[str, int] = dict(conn.execute(
            "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            (list(tables(callcentre.GROUP)),)).fetchall())
    order = [(method(s), -sizes[table(s)]) for s in built[0]]
    assert len(order) == len(DEFERRED)
    assert order == sorted(order)
    assert method(built[0][0]) == 0
    assert method(built[0][-1]) == 2
    assert len({table(s) for s in built[0] if method(s) == 1}) > 1  # sizes told apart


def method(statement: str) -> int:
    return 0 if " USING gist " in statement else 1 if " USING btree " in statement else 2


def table(statement: str) -> str:
    return statement.split(" ON ")[1].split(" USING ", maxsplit=1)[0].rsplit(".", maxsplit=1)[-1]
