"""`dialtone rebuild` of the call-centre group on a real PostgreSQL builds aside
and swaps in (issue 11 §5): a reader in a loop never sees an empty or
half-built table, the rebuilt rows equal the old ones, and a live applier that
keeps applying new events during the rebuild loses none of them."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import psycopg
import pytest
from psycopg import sql

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.snapshot import live_snapshot
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from projections import callcentre, interval_buckets
from projections.registry import tables
from streams.history import read_history
from streams.rebuild import replay_group
from tests.integration.test_kpi_sql import script
from tests.unit.test_kpi_properties import History

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

START = datetime(2025, 3, 29, 22, 0, tzinfo=ZoneInfo("Europe/Brussels")).astimezone(UTC)
# Columns that say when a row was written, not what it holds.
WRITTEN_AT = {"projected_at", "updated_at"}
BOUND_S = 120.0


def generated(length: int, seed: int = 7) -> History:
    history = History(START)
    for op in script(seed=seed, length=length):
        history.run(op)
    return history


def project(database_url: str, history: History, after: int = 0) -> int:
    """Apply the store's events after `after` as the live runner does (its source,
    batches of 50, and its refresher's work after them); return the last position applied."""
    source = f"store:{history.service.name}"
    position = after
    with psycopg.connect(database_url, autocommit=True) as conn:
        for page in read_history(history.service, page_size=50, after=after):
            callcentre.apply_batch(conn, page, source)
            position = page[-1].position
        interval_buckets.refresh_dirty(conn, wait=True)
    return position


def rows(database_url: str, schema: str = "public") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the group's tables in `schema`, sorted, without write times."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(database_url) as conn:
        for table in tables(callcentre.GROUP):
            columns = [c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
                if c not in WRITTEN_AT]
            query = sql.SQL("SELECT {} FROM {}.{}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema),
                sql.Identifier(table))
            found[table] = sorted((tuple(rounded(list(r))) for r in conn.execute(query)),
                                  key=repr)
    return found


def indexes(database_url: str) -> set[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return set(conn.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = ANY(%s)", (list(tables(callcentre.GROUP)),)).fetchall())


@pytest.fixture
def fresh(pg_admin_dsn: str) -> Iterator[Callable[[], str]]:
    """Makes migrated databases; drops them after the test."""
    made: list[str] = []

    def make() -> str:
        url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
        ensure_database(url)
        made.append(url)
        apply_migrations(url)
        return url
    yield make
    for url in made:
        drop_database(url)


class Reader(threading.Thread):
    """Reads the live view (api/live/snapshot.py, what GET /v1/live serves) at a
    fixed instant in a loop, keeping every answer that differs from the first."""

    def __init__(self, database_url: str, now: datetime) -> None:
        super().__init__(daemon=True)
        self.database_url, self.now = database_url, now
        self.stop = threading.Event()
        self.reads = 0
        self.baseline: dict[str, Any] | None = None
        self.different: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as error:  # reported by the test
            self.error = error

    async def _loop(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        principal = Principal("t", "key", DEFAULT_TENANT, Role.SUPERVISOR, "r")
        try:
            while not self.stop.is_set():
                seen = rounded((await live_snapshot(conn, principal, self.now)).model_dump(
                    exclude={"position"}))
                self.reads += 1
                if self.baseline is None:
                    self.baseline = seen
                elif seen != self.baseline:
                    self.different.append(seen)
                await asyncio.sleep(0.01)
        finally:
            await conn.close()


def test_readers_never_see_an_empty_or_half_built_table(fresh: Callable[[], str]) -> None:
    database_url = fresh()
    history = generated(3000)
    project(database_url, history)
    before, named = rows(database_url), indexes(database_url)
    assert min(len(before[t]) for t in ("agent_state", "queue_live", "queue_visits",
                                         "agent_state_intervals", "callcentre_events")) > 0
    reader = Reader(database_url, history.now)
    reader.start()
    try:
        _wait(lambda: reader.reads > 0 or reader.error is not None)
        read_before = reader.reads
        replay_group(history.service, database_url, callcentre.GROUP)
        during = reader.reads - read_before
        _wait(lambda: reader.reads > read_before + during + 1 or reader.error is not None)
    finally:
        reader.stop.set()
        reader.join(BOUND_S)
    assert reader.error is None, reader.error
    assert reader.baseline is not None
    assert reader.baseline["queues"]
    assert reader.different == []  # never empty, never partial: always the same view
    assert during >= 1  # the reader did read while the group was being rebuilt
    assert rows(database_url) == before
    assert indexes(database_url) == named  # the names migrations refer to
    with psycopg.connect(database_url) as conn:  # nothing left aside
        assert conn.execute("SELECT count(*) FROM pg_namespace"
                            " WHERE nspname LIKE 'rebuild_%'").fetchone() == (0,)


def never_analyzed(database_url: str, schema: str, names: list[str]) -> list[str]:
    """Which of the tables ``names`` in ``schema`` no ANALYZE has run on (autovacuum's
    own are counted apart, in last_autoanalyze)."""
    with psycopg.connect(database_url) as conn:
        return sorted(name for (name,) in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = %s"
            " AND relname = ANY(%s) AND last_analyze IS NULL", (schema, names)).fetchall())


def test_the_tables_swapped_in_have_statistics_for_their_first_readers(
        fresh: Callable[[], str]) -> None:
    database_url = fresh()
    history = generated(300)
    project(database_url, history)
    names = sorted(tables(callcentre.GROUP))
    assert never_analyzed(database_url, "public", names) == names  # the live path analyzes none
    replay_group(history.service, database_url, callcentre.GROUP)
    assert never_analyzed(database_url, "public", names) == []


def test_a_live_applier_loses_nothing_during_a_rebuild(fresh: Callable[[], str]) -> None:
    """While the group is rebuilt, the centre goes on (new events in the store)
    and the live path applies them as they come: after both, the tables equal a
    projection of the whole history made from scratch."""
    database_url, reference = fresh(), fresh()
    history = generated(1500)
    applied = [project(database_url, history)]
    more = script(seed=8, length=600)
    done = threading.Event()
    failure: list[BaseException] = []

    def live() -> None:  # the centre and its in-process runner, meanwhile
        try:
            for n, op in enumerate(more):
                history.run(op)
                if n % 20 == 0:
                    applied.append(project(database_url, history, applied[-1]))
        except BaseException as error:
            failure.append(error)
        finally:
            done.set()

    runner = threading.Thread(target=live, daemon=True)
    runner.start()
    replay_group(history.service, database_url, callcentre.GROUP)
    assert done.wait(BOUND_S)
    runner.join(BOUND_S)
    assert failure == []
    project(database_url, history, applied[-1])  # the runner's last batch
    project(reference, history)
    assert rows(database_url) == rows(reference)
    with psycopg.connect(database_url) as conn:
        head = history.service.recorder.max_notification_id()
        assert conn.execute("SELECT min(position) FROM projection_positions"
                            " WHERE projection = ANY(%s)",
                            (list(callcentre.GROUP.names),)).fetchone() == (head,)


def rounded(value: Any) -> Any:
    """Floats to 9 places: a sum over rows in another physical order may differ
    in its last bits."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def _wait(condition: Callable[[], bool]) -> None:
    deadline = datetime.now(UTC).timestamp() + BOUND_S
    while not condition():
        assert datetime.now(UTC).timestamp() < deadline, "timed out"
        threading.Event().wait(0.05)
