"""Every aggregate's history through the API (real PostgreSQL, the real app and
projections): timelines of agents, queues, IVR menus, numbers and dialplans,
the tenant's event feed (`GET /v1/events`), and the CSV/Parquet exports of CDRs
and events read back by pyarrow and DuckDB as an analyst would."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from api.exports import BATCH_ROWS, PARQUET_MEDIA_TYPE
from application.calls import CallService
from application.identity.model import Role
from dialtone.cli import cli
from dialtone.database import drop_database, ensure_database, eventsourcing_env, with_database
from domain.values import Direction
from projections import calls
from streams.inprocess import InProcessProjectionRunner
from tests.integration.api_support import api_key, assert_problem, cdr_row, insert_cdrs
from tests.integration.callcentre_api_support import Api, open_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

DID = "+15550009"
START = datetime(2026, 3, 1, tzinfo=UTC)
EXTRA_CDRS = BATCH_ROWS + 7  # more than one batch (one Parquet row group) of the export


@dataclass
class World:
    api: Api
    database_url: str
    acme: dict[str, str]  # admin
    analyst: dict[str, str]  # acme's
    globex: dict[str, str]  # admin
    cdrs: list[dict[str, Any]]  # the fully specified ones, first in the range


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def world(pg_admin_dsn: str) -> Iterator[World]:
    """One scenario for the module (its tests only read it)."""
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        with open_api(database_url) as api:
            yield _world(api, database_url)
    finally:
        drop_database(database_url)


def _world(api: Api, database_url: str) -> World:
    acme = bearer(api_key(database_url, Role.ADMIN, tenant="acme"))
    globex = bearer(api_key(database_url, Role.ADMIN, tenant="globex"))
    api.ok("POST", "/v1/agents", 201, headers=acme, json={"key": "alice", "name": "Alice"})
    api.ok("POST", "/v1/agents/alice/login", headers=acme,
           json={"device_uri": "sip:alice@127.0.0.1"})
    api.ok("POST", "/v1/agents/alice/pause", headers={**acme, "X-Request-ID": "req-pause-1"},
           json={"reason": "lunch"})
    api.ok("POST", "/v1/queues", 201, headers=acme, json={"key": "sales", "name": "Sales"})
    api.ok("POST", "/v1/ivr-menus", 201, headers=acme, json={
        "key": "main", "name": "Main", "prompt": "welcome",
        "options": {"1": {"kind": "queue", "value": "sales"}}})
    api.ok("POST", "/v1/numbers", 201, headers=acme,
           json={"did": DID, "destination": {"kind": "queue", "value": "sales"}})
    api.ok("POST", "/v1/dialplans", 201, headers=acme, json={
        "key": "out", "name": "Out",
        "rules": [{"name": "local", "kind": "exact", "pattern": "1", "uri_template": "sip:1@pbx"}]})
    api.ok("POST", "/v1/agents", 201, headers=globex, json={"key": "bob", "name": "Bob"})
    api.project()
    with CallService(env=eventsourcing_env(database_url)) as service:
        for n in range(2):
            service.initiate_call(caller="+3225550100", callee=DID, direction=Direction.INBOUND,
                                  trunk=DID, sip_call_id=f"history-{n}@test",
                                  occurred_at=START + timedelta(minutes=n), tenant="acme")
        InProcessProjectionRunner(service, database_url, [calls.GROUP]).catch_up()
    cdrs = [cdr_row(START + timedelta(seconds=n), tenant="acme") for n in range(3)]
    insert_cdrs(database_url, cdrs)
    _copies(database_url, cdrs[0], EXTRA_CDRS)
    insert_cdrs(database_url, [cdr_row(START, tenant="globex")])
    return World(api, database_url, acme, bearer(api_key(database_url, Role.ANALYST, "acme")),
                 globex, cdrs)


def _copies(database_url: str, row: dict[str, Any], count: int) -> None:
    """`count` copies of a CDR row with new ids, an hour after it (one statement)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO cdr SELECT gen_random_uuid(), started_at + interval '1 hour'"
            " + n * interval '1 ms', tenant, direction, caller, callee, final_callee, trunk,"
            " sip_call_id, status, queue, agents, queued_at, ringing_at, answered_at, ended_at,"
            " wait_s, talk_s, hold_s, hold_count, hold_started_at, wrap_up_s, disposition,"
            " hangup_cause, hangup_side, sip_status, transfers, recording_ref, mos, jitter_ms,"
            " loss_pct, rtt_ms, last_version, last_position"
            " FROM cdr, generate_series(1, %s) AS n WHERE call_id = %s", (count, row["call_id"]))


# -- timelines --------------------------------------------------------------------------


def test_an_agents_timeline_lists_its_events_with_who_stored_them(world: World) -> None:
    body = world.api.ok("GET", "/v1/agents/alice/timeline", headers=world.analyst)
    types = [e["type"] for e in body["events"]]
    assert types[:3] == ["dialtone.agent.created.v1", "dialtone.agent.logged_in.v1",
                         "dialtone.agent.paused.v1"]
    assert [e["version"] for e in body["events"]] == list(range(1, len(types) + 1))
    paused = body["events"][2]
    assert paused["data"]["reason"] == "lunch"
    assert (paused["actor_kind"], paused["request_id"]) == ("key", "req-pause-1")
    assert paused["log"] == "callcentre"
    assert paused["kind"] == "agent"
    assert body["next_after"] is None


def test_a_timeline_pages_by_version(world: World) -> None:
    first = world.api.ok("GET", "/v1/agents/alice/timeline", headers=world.acme,
                         params={"limit": 2})
    assert [e["version"] for e in first["events"]] == [1, 2]
    assert first["next_after"] == 2
    second = world.api.ok("GET", "/v1/agents/alice/timeline", headers=world.acme,
                          params={"after": first["next_after"], "limit": 2})
    assert second["events"][0]["version"] == 3
    past_the_end = world.api.ok("GET", "/v1/agents/alice/timeline", headers=world.acme,
                                params={"after": 1000})
    assert (past_the_end["events"], past_the_end["next_after"]) == ([], None)


@pytest.mark.parametrize(("path", "created"), [
    ("/v1/queues/sales/timeline", "dialtone.queue.created.v1"),
    ("/v1/ivr-menus/main/timeline", "dialtone.ivrmenu.created.v1"),
    (f"/v1/numbers/{DID}/timeline", "dialtone.number.created.v1"),
    ("/v1/dialplans/out/timeline", "dialtone.dialplan.created.v1"),
])
def test_every_configuration_aggregate_has_a_timeline(world: World, path: str,
                                                      created: str) -> None:
    body = world.api.ok("GET", path, headers=world.analyst)
    assert body["events"][0]["type"] == created
    assert body["events"][0]["actor_kind"] == "key"  # created through the API
    assert_problem(world.api.client.get(path, headers=world.globex), 404)


def test_another_tenants_or_an_unknown_key_is_404(world: World) -> None:
    assert_problem(world.api.client.get("/v1/agents/alice/timeline", headers=world.globex), 404)
    assert_problem(world.api.client.get("/v1/agents/bob/timeline", headers=world.acme), 404)
    assert_problem(world.api.client.get("/v1/queues/nope/timeline", headers=world.acme), 404)


def test_timeline_bad_paging_is_422_naming_the_field(world: World) -> None:
    for params, field in (({"after": -1}, "after"), ({"limit": 0}, "limit"),
                          ({"limit": 1001}, "limit")):
        body = assert_problem(world.api.client.get(
            "/v1/agents/alice/timeline", headers=world.acme, params=params), 422)
        assert field in json.dumps(body["errors"]), body


# -- the event feed ---------------------------------------------------------------------


def test_the_event_feed_is_the_tenants_events_in_store_order(world: World) -> None:
    body = world.api.ok("GET", "/v1/events", headers=world.analyst,
                        params={"log": "callcentre", "limit": 1000})
    positions = [e["position"] for e in body["data"]]
    assert positions == sorted(positions)
    assert {e["kind"] for e in body["data"]} == {"agent", "queue", "ivrmenu", "number",
                                                 "dialplan"}
    assert all(e["data"].get("key") != "bob" for e in body["data"])  # globex's agent
    globex = world.api.ok("GET", "/v1/events", headers=world.globex,
                          params={"log": "callcentre"})
    assert [e["type"] for e in globex["data"]] == ["dialtone.agent.created.v1"]


def test_the_event_feed_pages_after_a_position_and_filters(world: World) -> None:
    everything = world.api.ok("GET", "/v1/events", headers=world.acme,
                              params={"log": "callcentre"})["data"]
    seen: list[int] = []
    after = 0
    for _ in range(len(everything)):  # bounded: one event per page at least
        response = world.api.client.get("/v1/events", headers=world.acme,
                                        params={"log": "callcentre", "after": after, "limit": 3})
        page = response.json()
        seen += [e["position"] for e in page["data"]]
        if page["next_after"] is None:
            assert "Link" not in response.headers
            break
        assert f"after={page['next_after']}" in response.headers["Link"]
        after = page["next_after"]
    assert seen == [e["position"] for e in everything]
    paused = world.api.ok("GET", "/v1/events", headers=world.acme, params={
        "log": "callcentre", "type": "dialtone.agent.paused.v1"})["data"]
    assert [e["data"]["reason"] for e in paused] == ["lunch"]
    queues = world.api.ok("GET", "/v1/events", headers=world.acme, params={
        "log": "callcentre", "kind": "queue"})["data"]
    assert {e["kind"] for e in queues} == {"queue"}
    call_events = world.api.ok("GET", "/v1/events", headers=world.acme,
                               params={"log": "calls"})["data"]
    assert [e["type"] for e in call_events] == ["dialtone.call.initiated.v1"] * 2
    assert world.api.ok("GET", "/v1/events", headers=world.globex,
                        params={"log": "calls"})["count"] == 0


def test_the_event_feed_refuses_bad_input_naming_the_field(world: World) -> None:
    for params, field in (({}, "log"), ({"log": "everything"}, "log"),
                          ({"log": "calls", "after": -1}, "after"),
                          ({"log": "calls", "after": 2**63}, "after")):
        body = assert_problem(world.api.client.get("/v1/events", headers=world.acme,
                                                   params=params), 422)
        assert field in json.dumps(body["errors"]), body


# -- exports ----------------------------------------------------------------------------


def _day(**extra: Any) -> dict[str, Any]:
    return {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat(), **extra}


def _parquet(content: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(content)).to_pylist()
    return rows


def _as_exported(row: dict[str, Any]) -> dict[str, Any]:
    """A CDR row as the export writes it: ids as text, transfers as JSON text."""
    return {**row, "call_id": str(row["call_id"]),
            "transfers": json.dumps(row["transfers"], separators=(",", ":"))}


def test_cdrs_export_as_parquet_equals_the_rows(world: World, tmp_path: Any) -> None:
    response = world.api.client.get("/v1/exports/cdrs", headers=world.analyst,
                                    params=_day(format="parquet"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PARQUET_MEDIA_TYPE
    assert response.headers["content-disposition"].endswith('.parquet"')
    rows = _parquet(response.content)
    assert len(rows) == 3 + EXTRA_CDRS
    assert rows[:3] == [_as_exported(row) for row in world.cdrs]
    assert {row["tenant"] for row in rows} == {"acme"}
    # Streamed batch by batch: more than one row group.
    assert pq.ParquetFile(io.BytesIO(response.content)).num_row_groups == 2
    path = tmp_path / "cdrs.parquet"
    path.write_bytes(response.content)
    [(count, agents, talk)] = duckdb.execute(
        f"SELECT count(*), any_value(agents), sum(talk_s) FROM read_parquet('{path}')"
    ).fetchall()
    assert (count, agents, talk) == (len(rows), ["agent-7"], 55.0 * len(rows))


def test_cdrs_export_by_accept_header_and_as_csv(world: World) -> None:
    by_accept = world.api.client.get("/v1/exports/cdrs", headers={
        **world.acme, "Accept": PARQUET_MEDIA_TYPE}, params=_day())
    assert len(_parquet(by_accept.content)) == 3 + EXTRA_CDRS
    csv = world.api.client.get("/v1/exports/cdrs", headers=world.acme, params=_day())
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("call_id,started_at,tenant,direction")
    assert len(lines) == 1 + 3 + EXTRA_CDRS


def test_an_empty_range_exports_an_empty_file(world: World) -> None:
    empty = _day(**{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"})
    assert _parquet(world.api.client.get("/v1/exports/cdrs", headers=world.acme,
                                         params={**empty, "format": "parquet"}).content) == []
    csv = world.api.client.get("/v1/exports/events", headers=world.acme, params=empty)
    assert csv.text.splitlines() == [
        "log,position,occurred_at,kind,aggregate_id,version,type,event_id,data,actor,"
        "actor_kind,request_id"]


def test_events_export_as_parquet_equals_the_feed(world: World) -> None:
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
    rows = _parquet(world.api.client.get("/v1/exports/events", headers=world.analyst, params={
        **window, "format": "parquet", "log": "callcentre"}).content)
    feed = world.api.ok("GET", "/v1/events", headers=world.analyst,
                        params={"log": "callcentre", "limit": 1000})["data"]
    assert [(r["position"], r["type"], r["request_id"]) for r in rows] == [
        (e["position"], e["type"], e["request_id"]) for e in feed]
    assert [json.loads(r["data"]) for r in rows] == [e["data"] for e in feed]
    both = _parquet(world.api.client.get("/v1/exports/events", headers=world.analyst, params={
        "from": "2026-01-01T00:00:00Z", "to": (now + timedelta(days=1)).isoformat(),
        "format": "parquet"}).content)
    assert [r["log"] for r in both] == ["calls"] * 2 + ["callcentre"] * len(feed)


def test_exports_refuse_bad_ranges_naming_the_field(world: World) -> None:
    later = (START + timedelta(days=400)).isoformat()
    for params, field in ((_day(**{"from": later}), "from"), (_day(to=later), "to"),
                          (_day(format="xlsx"), "format"), ({"to": later}, "from")):
        body = assert_problem(world.api.client.get("/v1/exports/cdrs", headers=world.acme,
                                                   params=params), 422)
        assert field in json.dumps(body["errors"]), (params, body)


def test_exports_need_history_read(world: World) -> None:
    agent = bearer(api_key(world.database_url, Role.AGENT, "acme"))
    assert_problem(world.api.client.get("/v1/exports/cdrs", headers=agent, params=_day()), 403)
    assert_problem(world.api.client.get("/v1/events", headers=agent,
                                        params={"log": "calls"}), 403)


# -- dialtone export ----------------------------------------------------------------------


def _cli(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["export", *args], env={"DATABASE_URL": world.database_url},
                              catch_exceptions=False)


def test_cli_exports_cdrs_as_parquet_to_a_file(world: World, tmp_path: Any) -> None:
    path = tmp_path / "cdrs.parquet"
    result = _cli(world, "cdr", "--from", "2026-03-01", "--to", "2026-03-02", "--format",
                  "parquet", "--output", str(path), "--tenant", "acme")
    assert result.exit_code == 0, result.output
    assert f"{3 + EXTRA_CDRS} rows written" in result.output
    rows = pq.read_table(path).to_pylist()
    assert rows[:3] == [_as_exported(row) for row in world.cdrs]
    assert len(rows) == 3 + EXTRA_CDRS


def test_cli_exports_events_as_csv_and_refuses_a_reversed_range(world: World) -> None:
    result = _cli(world, "events", "--from", "2026-01-01", "--to",
                  (datetime.now(UTC) + timedelta(days=1)).isoformat(), "--tenant", "acme",
                  "--log", "calls")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(("log,", "calls,"))]
    assert len(lines) == 1 + 2  # the header and the two calls' Initiated events
    reversed_range = _cli(world, "events", "--from", "2026-03-02", "--to", "2026-03-01")
    assert reversed_range.exit_code == 2
    assert "--from" in reversed_range.output


def test_cli_exports_an_agent_report_as_the_api_computes_it(world: World,
                                                            tmp_path: Any) -> None:
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(hours=1)).isoformat(),
              "to": (now + timedelta(minutes=15)).isoformat()}
    path = tmp_path / "agents.parquet"
    result = _cli(world, "reports", "--of", "agents", "--interval", "15m", "--from",
                  window["from"], "--to", window["to"], "--format", "parquet", "--output",
                  str(path), "--tenant", "acme")
    assert result.exit_code == 0, result.output
    rows = pq.read_table(path).to_pylist()
    api = world.api.ok("GET", "/v1/reports/agents", headers=world.analyst, params=window)
    assert api["count"] >= 1  # alice, logged in and paused
    assert [(r["key"], r["since"], json.loads(r["pause_by_reason"]).keys()) for r in rows] == [
        (d["key"], datetime.fromisoformat(d["since"]), d["pause_by_reason"].keys())
        for d in api["data"]]
    too_long = _cli(world, "reports", "--interval", "15m", "--from", "2026-03-01", "--to",
                    "2026-03-09")
    assert too_long.exit_code == 2
    assert "--to" in too_long.output


def test_cli_refuses_a_report_over_the_apis_row_bound(world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.routes.reports.MAX_ROWS", 1)
    now = datetime.now(UTC)
    result = _cli(world, "reports", "--of", "agents", "--from",
                  (now - timedelta(hours=1)).isoformat(), "--to", now.isoformat(), "--tenant",
                  "acme")
    assert result.exit_code == 2, result.output
    assert "--to" in result.output
