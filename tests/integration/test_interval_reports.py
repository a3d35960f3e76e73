"""Interval reports (issue 11 §1) on a real PostgreSQL, after real call-centre commands
(the morning of test_callcentre_projections, recorded by the service and router):
the last closed 15-minute bucket equals the live view's rolling window for it;
hours and days add buckets and the quiet time after them as kpi would; CSV; bad
input; a DST day of 23 and of 25 hours in the tenant's zone; and a generated
history delivered out of order leaves every bucket equal to kpi's sums over it,
before and after `dialtone rebuild`'s replay of the group."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api.db import asyncpg_dsn
from api.queries.reports import window_sums
from api.routes import reports as reports_route
from application.callcentre import CallCentreService
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.commands import tenants
from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from projections import callcentre, interval_buckets, interval_reports, kpi
from projections.envelope import decode
from projections.interval_buckets import BUCKET
from streams.rebuild import replay_group
from tests.integration.api_support import api_key, running_api
from tests.integration.morning_support import morning_database
from tests.integration.test_callcentre_projections import at
from tests.integration.test_kpi_sql import redelivered, script
from tests.integration.test_live_snapshot import snapshot_at
from tests.unit.test_interval_reports import flat_numbers
from tests.unit.test_kpi_properties import History

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

NINE = at(0)  # 2025-03-01 09:00 UTC; the morning's events are all before 09:05


@pytest.fixture(scope="module")
def projected(pg_admin_dsn: str) -> Iterator[str]:
    with morning_database(pg_admin_dsn, buckets=True) as url:
        yield url


@pytest.fixture(scope="module")
def client(projected: str) -> Iterator[TestClient]:
    with running_api(projected, role=Role.ANALYST) as analyst:
        yield analyst


def report(client: TestClient, kind: str, interval: str, since: datetime, until: datetime,
           **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/v1/reports/{kind}", params={
        "interval": interval, "from": since.isoformat(), "to": until.isoformat(), **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    rows: list[dict[str, Any]] = body["data"]
    return rows


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}


def test_the_last_closed_bucket_equals_the_live_views_window(projected: str,
                                                              client: TestClient) -> None:
    end = NINE + BUCKET
    live = snapshot_at(projected, Role.SUPERVISOR, end)  # window_s: 900, the default
    assert live.window_s == 900
    queues = by_key(report(client, "queues", "15m", NINE, end))
    assert set(queues) == {"sales", "support"}
    for queue in live.queues:
        row = queues[queue.key]
        assert {k: row[k] for k in ("talk_s", "hold_s", "wrap_up_s")} == {
            "talk_s": 95.0 if queue.key == "sales" else 0.0, "hold_s": 0.0,
            "wrap_up_s": 30.0 if queue.key == "sales" else 0.0}
        assert {k: v for k, v in row.items() if k in type(queue.window).model_fields} == \
            queue.window.model_dump(mode="json")
    agents = by_key(report(client, "agents", "15m", NINE, end))
    for agent in live.agents:  # nothing happened before 09:00: "today" is this bucket too
        row = agents[agent.key]
        assert (row["handled"], row["aht_s"], row["occupancy"], row["missed_offers"]) == (
            agent.handled_today, agent.aht_today_s, agent.occupancy_today,
            agent.missed_offers_today)


def test_queue_and_agent_figures_of_the_morning(client: TestClient) -> None:
    queues = by_key(report(client, "queues", "15m", NINE, NINE + BUCKET))
    sales, support = queues["sales"], queues["support"]
    assert (sales["offered"], sales["answered"], sales["transferred_out"]) == (2, 1, 1)
    assert (sales["asa_s"], sales["aht_s"], sales["service_level"]) == (5.0, 125.0, 0.5)
    # C2 still waiting at the bucket's end: 09:15 - 09:02:05
    assert (support["transferred_in"], support["abandoned"]) == (1, 1)
    assert support["longest_wait_s"] == 775.0
    agents = by_key(report(client, "agents", "15m", NINE, NINE + BUCKET))
    alice, bob = agents["alice"], agents["bob"]
    assert (alice["handled"], alice["talk_s"], alice["wrap_up_s"]) == (1, 95.0, 30.0)
    assert alice["pause_by_reason"] == {"lunch": 60.0}
    assert alice["staffed_s"] == 890.0 == sum(alice["time_by_state"].values())
    assert (alice["time_by_state"]["on_call"], alice["time_by_state"]["wrap_up"]) == (95.0, 30.0)
    assert bob["missed_offers"] == 1
    assert set(bob["pause_by_reason"]) == {"missed-offers"}
    only = report(client, "agents", "15m", NINE, NINE + BUCKET, agent=["alice"])
    assert [r["key"] for r in only] == ["alice"]
    by_id = report(client, "queues", "15m", NINE, NINE + BUCKET, queue=[sales["queue_id"]])
    assert [r["key"] for r in by_id] == ["sales"]


def kpi_figures(database_url: str, window: kpi.Window
                ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """kpi's figures straight from the fact tables, per queue and agent id."""
    async def read() -> tuple[dict[Any, Any], dict[Any, Any]]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await window_sums(conn, DEFAULT_TENANT, window)
        finally:
            await conn.close()
    queues, agents = asyncio.run(read())
    return ({str(q): interval_reports.queue_figures(s, window) for q, s in queues.items()},
            {str(a): interval_reports.agent_figures(s, window) for a, s in agents.items()})


def same(row: dict[str, Any], figures: dict[str, Any]) -> None:
    assert flat_numbers({k: row[k] for k in figures}) == pytest.approx(flat_numbers(figures))


def test_hours_and_days_equal_kpis_figures_of_their_window(projected: str,
                                                           client: TestClient) -> None:
    for interval, window in (("1h", kpi.Window(NINE, NINE + timedelta(hours=1))),
                             ("1d", kpi.Window(NINE - timedelta(hours=9),
                                               NINE + timedelta(hours=15)))):
        queues, agents = kpi_figures(projected, window)
        rows = report(client, "queues", interval, NINE, NINE + BUCKET)
        assert {(r["since"], r["until"]) for r in rows} == {
            (window.since.isoformat().replace("+00:00", "Z"),
             window.until.isoformat().replace("+00:00", "Z"))}
        for row in rows:
            same(row, queues[row["queue_id"]])
        for row in report(client, "agents", interval, NINE, NINE + BUCKET):
            same(row, agents[row["agent_id"]])
    alice = by_key(report(client, "agents", "1h", NINE, NINE + BUCKET))["alice"]
    assert alice["staffed_s"] == 3590.0  # logged in at 09:00:10, still in at 10:00


def test_csv_has_a_header_and_a_line_per_row(client: TestClient) -> None:
    response = client.get("/v1/reports/agents", headers={"Accept": "text/csv"}, params={
        "interval": "15m", "from": NINE.isoformat(), "to": (NINE + BUCKET).isoformat()})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    alice = next(r for r in rows if r["key"] == "alice")
    assert (alice["handled"], alice["hold_s"], alice["since"]) == ("1", "0.0",
                                                                  "2025-03-01T09:00:00Z")
    assert json.loads(alice["pause_by_reason"]) == {"lunch": 60.0}
    assert len(rows) == 2


def test_parquet_reads_back_as_the_json_rows(client: TestClient) -> None:
    params = {"interval": "15m", "from": NINE.isoformat(), "to": (NINE + BUCKET).isoformat()}
    for kind in ("queues", "agents"):
        rows = client.get(f"/v1/reports/{kind}", params=params).json()["data"]
        response = client.get(f"/v1/reports/{kind}", params={**params, "format": "parquet"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.apache.parquet"
        assert response.headers["content-disposition"].endswith('.parquet"')
        table = pq.read_table(io.BytesIO(response.content))
        assert table.schema.field("since").type == pa.timestamp("us", tz="UTC")
        read = table.to_pylist()
        assert [r[f"{kind[:-1]}_id"] for r in read] == [r[f"{kind[:-1]}_id"] for r in rows]
        for mine, theirs in zip(read, rows, strict=True):
            assert set(mine) == set(theirs)
            for name, value in theirs.items():
                if name in ("since", "until"):
                    assert mine[name].isoformat().replace("+00:00", "Z") == value
                elif isinstance(value, dict):  # a map: JSON text
                    assert json.loads(mine[name]) == value
                else:
                    assert mine[name] == value, name
    by_accept = client.get("/v1/reports/agents", params=params,
                           headers={"Accept": "application/vnd.apache.parquet"})
    assert pq.read_table(io.BytesIO(by_accept.content)).num_rows == 2
    as_csv = client.get("/v1/reports/agents", params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert problem_field(client.get("/v1/reports/agents",
                                    params={**params, "format": "xlsx"})) == "format"


def problem_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


def test_bad_input_and_other_tenants(projected: str, client: TestClient,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"from": NINE.isoformat(), "to": (NINE + BUCKET).isoformat()}
    assert problem_field(client.get("/v1/reports/queues", params={**base, "interval": "5m"})) \
        == "interval"
    reversed_ = {"from": base["to"], "to": base["from"]}
    assert problem_field(client.get("/v1/reports/queues", params=reversed_)) == "from"
    too_long = {"from": NINE.isoformat(), "to": (NINE + timedelta(days=8)).isoformat()}
    assert problem_field(client.get("/v1/reports/agents", params=too_long)) == "to"
    assert client.get("/v1/reports/agents", params={**too_long, "interval": "1h"}
                      ).status_code == 200
    assert client.get("/v1/reports/queues", params={**base, "queue": "nope"}).status_code == 404
    assert client.get("/v1/reports/agents", params={**base, "agent": str(uuid.uuid4())}
                      ).status_code == 404
    empty = client.get("/v1/reports/queues", params={"from": base["from"], "to": base["from"]})
    assert empty.json()["data"] == []
    assert report(client, "queues", "15m", NINE - timedelta(days=1),
                  NINE - timedelta(hours=12)) == []
    other = {"Authorization": f"Bearer {api_key(projected, Role.ANALYST, 'other')}"}
    assert client.get("/v1/reports/queues", headers=other, params=base).json()["data"] == []
    assert client.get("/v1/reports/queues", headers=other,
                      params={**base, "queue": "sales"}).status_code == 404
    agent_key = {"Authorization": f"Bearer {api_key(projected, Role.AGENT)}"}
    assert client.get("/v1/reports/queues", headers=agent_key, params=base).status_code == 403
    monkeypatch.setattr(reports_route, "MAX_ROWS", 7)  # 4 quarter hours x 2 queues: 8 rows
    an_hour = {"from": NINE.isoformat(), "to": (NINE + timedelta(hours=1)).isoformat()}
    assert problem_field(client.get("/v1/reports/queues", params=an_hour)) == "to"
    assert client.get("/v1/reports/queues", params={**an_hour, "queue": "sales"}
                      ).status_code == 200


# -- a DST day, in the tenant's zone -------------------------------------------------------


@pytest.fixture
def fresh(pg_admin_dsn: str) -> Iterator[str]:
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        apply_migrations(database_url)
        yield database_url
    finally:
        drop_database(database_url)


def project(database_url: str, service: CallCentreService, batch: int = 1000) -> None:
    events = decode(service, service.recorder.select_notifications(1, 100_000))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for first in range(0, len(events), batch):
            callcentre.apply_batch(conn, events[first:first + batch], "store:test")
        interval_buckets.refresh_dirty(conn)


def test_a_dst_day_has_23_or_25_hours_of_staffed_time(fresh: str) -> None:
    service = CallCentreService()
    t = datetime(2025, 3, 1, tzinfo=UTC)
    agent = service.create_agent("dora", "Dora", occurred_at=t).id
    service.create_agent("ed", "Ed", occurred_at=t)  # never logged in: no row anywhere
    # Logged in through the spring night (30 March) and the autumn night (26 October).
    for login, pause, logout in ((datetime(2025, 3, 29, 20, tzinfo=UTC),
                                  datetime(2025, 3, 30, 12, tzinfo=UTC),
                                  datetime(2025, 3, 31, tzinfo=UTC)),
                                 (datetime(2025, 10, 25, 20, tzinfo=UTC),
                                  datetime(2025, 10, 26, 12, tzinfo=UTC),
                                  datetime(2025, 10, 27, tzinfo=UTC))):
        service.login(agent, "sip:dora@pbx.example.com", login)
        service.pause(agent, "training", pause)
        service.resume(agent, pause + timedelta(hours=1))
        service.logout(agent, logout)
    project(fresh, service)
    zone = CliRunner().invoke(tenants.command, ["zone", DEFAULT_TENANT, "Europe/Brussels",
                                                "--create"], obj=Settings(database_url=fresh))
    assert zone.exit_code == 0, zone.output
    with running_api(fresh, role=Role.ANALYST) as client:
        spring = report(client, "agents", "1d", datetime(2025, 3, 29, 12, tzinfo=UTC),
                        datetime(2025, 3, 31, 12, tzinfo=UTC))
        autumn = report(client, "agents", "1d", datetime(2025, 10, 26, 12, tzinfo=UTC),
                        datetime(2025, 10, 26, 13, tzinfo=UTC))
    assert {r["key"] for r in spring + autumn} == {"dora"}
    assert [(r["since"], r["staffed_s"], r["paused_s"]) for r in spring] == [
        ("2025-03-28T23:00:00Z", 3 * 3600.0, 0.0),      # from 20:00 UTC to local midnight
        ("2025-03-29T23:00:00Z", 23 * 3600.0, 3600.0),  # the whole 23-hour day
        ("2025-03-30T22:00:00Z", 2 * 3600.0, 0.0)]      # to 00:00 UTC, 02:00 local
    assert [(r["since"], r["until"], r["staffed_s"]) for r in autumn] == [
        ("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z", 25 * 3600.0)]
    assert autumn[0]["pause_by_reason"] == {"training": 3600.0}


# -- out-of-order delivery and rebuild -----------------------------------------------------


def stored(database_url: str) -> dict[str, list[dict[str, Any]]]:
    tables = {"interval_queue": "queue_id", "interval_agent": "agent_id",
              "interval_agent_state": "agent_id, state, reason", "interval_marks": "tenant"}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY bucket_start, {k}").fetchall()
                for t, k in tables.items()}


def test_buckets_equal_kpi_in_any_delivery_order_and_after_rebuild(fresh: str) -> None:
    generated = History(datetime(2025, 3, 29, 21, 0, tzinfo=UTC))
    for op in script(seed=7, length=150):
        generated.run(op)
    events = decode(generated.service,
                    generated.service.recorder.select_notifications(1, 100_000))
    deliveries = redelivered(events)
    # One agent's events come last: its periods fold after other events computed the
    # buckets they span (so the buckets must be computed again).
    late = generated.agents[0]
    deliveries = ([e for e in deliveries if e.subject != late]
                  + [e for e in deliveries if e.subject == late])
    with psycopg.connect(fresh, autocommit=True) as conn:
        for first in range(0, len(deliveries), 7):
            callcentre.apply_batch(conn, deliveries[first:first + 7], "shuffled")
            if first % 70 == 0:  # the refresher runs now and then, between batches
                interval_buckets.refresh_dirty(conn)
        interval_buckets.refresh_dirty(conn)
    shuffled = stored(fresh)
    marks = [r["bucket_start"] for r in shuffled["interval_marks"]]
    assert len(marks) > 4
    for bucket in marks:
        window = kpi.Window(bucket, bucket + BUCKET)
        queues, agents = kpi_figures(fresh, window)
        rows = {str(r["queue_id"]): r for r in shuffled["interval_queue"]
                if r["bucket_start"] == bucket}
        assert set(rows) == set(queues)
        for queue_id, row in rows.items():
            same(interval_reports.queue_figures(row, window), queues[queue_id])
        sums = {str(r["agent_id"]): {**r, "states": {}} for r in shuffled["interval_agent"]
                if r["bucket_start"] == bucket}
        for r in shuffled["interval_agent_state"]:
            if r["bucket_start"] == bucket:
                sums[str(r["agent_id"])]["states"][(r["state"], r["reason"])] = r["seconds"]
        assert set(sums) == {a for a, f in agents.items() if f["staffed_s"] or f["handled"]
                             or f["missed_offers"]}
        for agent_id, row in sums.items():
            same(interval_reports.agent_figures(row, window), agents[agent_id])
    replay_group(generated.service, fresh, callcentre.GROUP)
    rebuilt = stored(fresh)
    assert rebuilt.keys() == shuffled.keys()
    for table, table_rows in rebuilt.items():
        assert len(table_rows) == len(shuffled[table]), table
        for mine, theirs in zip(table_rows, shuffled[table], strict=True):
            floats = [k for k, v in theirs.items() if isinstance(v, float)]
            assert {k: v for k, v in mine.items() if k not in floats} == {
                k: v for k, v in theirs.items() if k not in floats}, table
            assert [mine[k] for k in floats] == pytest.approx([theirs[k] for k in floats])
