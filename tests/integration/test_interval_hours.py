"""The interval buckets' hours (migration 0026) on a real PostgreSQL: each UTC hour's
row is the sum of its 15-minute rows, however the events arrived, after a rebuild's
parallel refresh, and after the migration built them from the buckets already
stored; hourly and daily reports read them (and the 15-minute rows at the edges),
and every report gives kpi's figures of each window, in whole-hour zones and in
others."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg.rows import dict_row

from api.db import asyncpg_dsn
from api.queries.reports import ReportRequest, report, snapshot
from application.identity.model import DEFAULT_TENANT
from dialtone.migrations import apply_migrations
from projections import callcentre, interval_buckets, interval_reports, kpi
from projections.envelope import EventEnvelope, decode
from projections.interval_buckets import BUCKET, HOURS, QUARTERS, hour_of
from streams.rebuild import replay_group
from tests.integration.test_interval_reports import fresh, kpi_figures, same
from tests.integration.test_kpi_sql import redelivered, script
from tests.unit.test_kpi_properties import History

__all__ = ["fresh"]  # the fixture: a migrated database of its own per test
pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

START = datetime(2025, 3, 29, 21, 0, tzinfo=UTC)
KEYS = {"interval_queue": ("queue_id",), "interval_agent": ("agent_id",),
        "interval_agent_state": ("agent_id", "state", "reason")}


def generated(seed: int = 7, length: int = 150) -> tuple[History, list[EventEnvelope]]:
    history = History(START)
    for op in script(seed=seed, length=length):
        history.run(op)
    return history, decode(history.service,
                           history.service.recorder.select_notifications(1, 100_000))


def rows(database_url: str, table: str) -> list[dict[str, Any]]:
    order = ", ".join(("tenant", "bucket_start", *KEYS[table.removesuffix("_hour")]))
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def summed_by_hour(quarters: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    """The quarters added up per UTC hour, in Python: counts summed, seconds summed and
    rounded to the microsecond, the longest wait the largest."""
    hours: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in quarters:
        key = (row["tenant"], hour_of(row["bucket_start"]), *(row[k] for k in KEYS[table]))
        total = hours.setdefault(key, {**row, "bucket_start": key[1]} | {
            k: (None if k == "longest_wait_s" else 0) for k in row
            if k not in ("tenant", "bucket_start", *KEYS[table])})
        for name, value in row.items():
            if name == "longest_wait_s":
                total[name] = max((v for v in (total[name], value) if v is not None),
                                  default=None)
            elif name not in ("tenant", "bucket_start", *KEYS[table]):
                total[name] += value
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in total.items()}
            for _, total in sorted(hours.items(), key=lambda item: str(item[0]))]


def assert_hours_are_their_quarters(database_url: str) -> int:
    """Every hour table equals its quarters summed; return how many hour rows."""
    count = 0
    for table in QUARTERS:
        found = rows(database_url, f"{table}_hour")
        expected = summed_by_hour(rows(database_url, table), table)
        assert sorted(found, key=str) == sorted(expected, key=str), table
        count += len(found)
    return count


def test_every_hour_is_its_quarters_in_any_delivery_order_and_after_rebuild(
        fresh: str) -> None:
    history, events = generated()
    deliveries = redelivered(events)
    with psycopg.connect(fresh, autocommit=True) as conn:
        for first in range(0, len(deliveries), 7):
            callcentre.apply_batch(conn, deliveries[first:first + 7], "shuffled")
            if first % 70 == 0:  # the refresher now and then, a bucket or a few at a time
                interval_buckets.refresh_dirty(conn, batch=3)
        interval_buckets.refresh_dirty(conn)
    assert assert_hours_are_their_quarters(fresh) > 10
    live = {table: rows(fresh, table) for table in HOURS}
    replay_group(history.service, fresh, callcentre.GROUP)
    assert {table: rows(fresh, table) for table in HOURS} == live  # to the last digit


def test_a_rebuilds_refresh_on_two_connections_sums_every_hour_from_all_its_quarters(
        fresh: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, events = generated(seed=3, length=300)
    with psycopg.connect(fresh, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
    # Batches of a few buckets: most hours' quarters are dirty together, and two
    # batches computed at once would both write the hour they share.
    monkeypatch.setattr(interval_buckets, "BATCH", 2)
    refreshed = interval_buckets.refresh_fresh(
        lambda: psycopg.connect(fresh, autocommit=True), jobs=2)
    assert refreshed > 8
    assert assert_hours_are_their_quarters(fresh) > 10


def test_the_batches_of_a_parallel_refresh_never_split_an_hour(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interval_buckets, "BATCH", 2)  # slices of 2 would split hours
    hour = datetime(2025, 3, 30, 1, tzinfo=UTC)
    buckets = [hour + BUCKET * n for n in (0, 1, 2, 3, 4, 6, 9, 10, 11, 12)]
    batches = interval_buckets._whole_hours(buckets)
    assert [b for batch in batches for b in batch] == buckets
    assert len(batches) == 4  # each of the four hours a batch of its own
    hours = [{hour_of(b) for b in batch} for batch in batches]
    assert all(not (a & b) for n, a in enumerate(hours) for b in hours[n + 1:])


def test_the_migration_builds_the_hours_from_the_buckets_stored(fresh: str) -> None:
    _, events = generated()
    with psycopg.connect(fresh, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
        interval_buckets.refresh_dirty(conn, wait=True)
    refreshed = {table: rows(fresh, table) for table in HOURS}
    # As a database before 0026: no hour tables, no positions for them, 0026 not applied.
    with psycopg.connect(fresh, autocommit=True) as conn:
        for table in HOURS:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM projection_positions WHERE projection LIKE '%%\\_hour'")
        conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = '0026_interval_hours'")
    apply_migrations(fresh)
    assert {table: rows(fresh, table) for table in HOURS} == refreshed
    with psycopg.connect(fresh) as conn:
        positions = conn.execute(
            "SELECT projection, source, position FROM projection_positions"
            " WHERE projection = 'interval_queue' OR projection LIKE '%%\\_hour'").fetchall()
    assert {(name, source, position) for name, source, position in positions} == {
        (name, "store:test", len(events)) for name in ("interval_queue", *HOURS)}


def read(database_url: str, request: ReportRequest, zone: str,
         now: datetime) -> list[tuple[kpi.Window, Any, dict[str, Any]]]:
    async def run() -> list[tuple[kpi.Window, Any, dict[str, Any]]]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            async with snapshot(conn):
                return await report(conn, request, zone, now)
        finally:
            await conn.close()
    return asyncio.run(run())


def assert_report_is_kpi(database_url: str, kind: str, interval: interval_reports.Interval,
                         zone: str, now: datetime) -> int:
    """Each row of the report equals kpi's figures of its window; return how many rows."""
    request = ReportRequest(DEFAULT_TENANT, kind, interval, START, now, None)
    found = read(database_url, request, zone, now)
    by_window: defaultdict[kpi.Window, dict[str, Any]] = defaultdict(dict)
    for window, entity, sums in found:
        by_window[window][str(entity)] = sums
    figures = (interval_reports.queue_figures if kind == "queue"
               else interval_reports.agent_figures)
    for window, sums in by_window.items():
        upto_now = kpi.Window(window.since, min(window.until, now))
        queues, agents = kpi_figures(database_url, upto_now)
        expected = queues if kind == "queue" else agents
        for entity, entity_sums in sums.items():
            same(figures(entity_sums, upto_now), expected[entity])
    return len(found)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Brussels", "Asia/Kolkata", "Australia/Eucla"])
def test_reports_are_kpis_figures_with_a_bucket_left_dirty(
        fresh: str, zone: str) -> None:
    _, events = generated()
    with psycopg.connect(fresh, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
        interval_buckets.refresh_dirty(conn, wait=True)
        marks = [r[0] for r in conn.execute(
            "SELECT bucket_start FROM interval_marks ORDER BY 1").fetchall()]
        # A bucket a quarter past an hour left to recompute: the hours are read up to
        # the hour before it, its hour's first quarter from the 15-minute rows, the
        # rest from the fact tables.
        dirty = next(m for m in marks[len(marks) // 2:] if interval_buckets.number(m) % 4 == 1)
        conn.execute("INSERT INTO interval_dirty (tenant, bucket_start) VALUES (%s, %s)",
                     (DEFAULT_TENANT, dirty))
    now = marks[-1] + timedelta(hours=2)
    for kind in ("queue", "agent"):
        for interval in ("15m", "1h", "1d"):
            assert assert_report_is_kpi(fresh, kind, interval, zone, now) > 0


def test_hourly_and_daily_reports_read_the_hours_where_the_zone_allows(fresh: str) -> None:
    _, events = generated()
    with psycopg.connect(fresh, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
        interval_buckets.refresh_dirty(conn, wait=True)
    now = rows(fresh, "interval_queue")[-1]["bucket_start"] + timedelta(hours=2)

    def offered(interval: interval_reports.Interval, zone: str) -> int:
        request = ReportRequest(DEFAULT_TENANT, "queue", interval, START, now, None)
        return sum(sums["offered"] for _, _, sums in read(fresh, request, zone, now))
    before = {(i, z): offered(i, z) for i in ("15m", "1h", "1d") for z in ("UTC", "Asia/Kolkata")}
    with psycopg.connect(fresh, autocommit=True) as conn:  # the hours alone say otherwise
        changed = conn.execute("UPDATE interval_queue_hour SET offered = offered + 1000").rowcount
    after = {(i, z): offered(i, z) for i in ("15m", "1h", "1d") for z in ("UTC", "Asia/Kolkata")}
    assert after == {**before, ("1h", "UTC"): before[("1h", "UTC")] + 1000 * changed,
                     ("1d", "UTC"): before[("1d", "UTC")] + 1000 * changed}
