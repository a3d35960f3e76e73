"""GET /v1/cdrs on a real PostgreSQL: range, filters, keyset paging, CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx2
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.queries import cdrs as cdr_queries
from api.schemas.cdrs import CDR_COLUMNS
from tests.integration.api_support import (
    assert_problem,
    cdr_row,
    insert_cdrs,
    running_api,
    utc,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

DAY = {"from": "2025-03-03T00:00:00Z", "to": "2025-03-04T00:00:00Z"}
T0 = utc("2025-03-03T08:00:00")


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with running_api(database_url) as client:
        yield client


def listed(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/cdrs", params={**DAY, **params})
    assert response.status_code == 200, response.text
    return [cdr["call_id"] for cdr in response.json()["data"]]


def next_link(response: httpx2.Response) -> str | None:
    match = re.fullmatch(r'<(.+)>; rel="next"', response.headers.get("link", ""))
    return match.group(1) if match else None


def test_cdr_carries_every_column_of_the_cdr_table(client, database_url):
    transfers = [{"kind": "blind", "target": "queue-support", "at": "2025-03-03T08:00:30+00:00"}]
    row = cdr_row(T0, agents=["agent-7", "agent-9"], transfers=transfers)
    insert_cdrs(database_url, [row])
    with psycopg.connect(database_url) as conn:
        table = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'cdr' "
            "ORDER BY ordinal_position")]
    assert list(CDR_COLUMNS) == table

    [cdr] = client.get("/v1/cdrs", params=DAY).json()["data"]
    assert list(cdr) == table
    assert cdr["agents"] == ["agent-7", "agent-9"]
    assert cdr["transfers"] == [{"kind": "blind", "target": "queue-support",
                                 "at": "2025-03-03T08:00:30Z"}]
    assert (cdr["mos"], cdr["jitter_ms"], cdr["loss_pct"], cdr["rtt_ms"]) == (4.2, 3.5, 0.25, 42.0)
    assert (cdr["wait_s"], cdr["talk_s"], cdr["hold_s"], cdr["hold_count"]) == (9.0, 55.0, 5.0, 1)
    assert cdr["ended_at"] == "2025-03-03T08:01:10Z"


def test_cdrs_list_only_final_rows_in_the_range_in_start_order(client, database_url):
    inside = [cdr_row(T0 + timedelta(minutes=m)) for m in (30, 10, 20)]
    in_progress = cdr_row(T0, status="answered", ended_at=None, disposition=None)
    before = cdr_row(utc("2025-03-02T23:59:59"))
    at_end = cdr_row(utc("2025-03-04T00:00:00"))  # `to` is exclusive
    at_start = cdr_row(utc("2025-03-03T00:00:00"))  # `from` is inclusive
    insert_cdrs(database_url, [*inside, in_progress, before, at_end, at_start])
    expected = [at_start, *sorted(inside, key=lambda r: r["started_at"])]
    assert listed(client) == [str(r["call_id"]) for r in expected]


def test_cdrs_default_to_the_last_24_hours(client, database_url):
    now = datetime.now(UTC)
    recent = cdr_row(now - timedelta(hours=1))
    old = cdr_row(now - timedelta(hours=25))
    insert_cdrs(database_url, [recent, old])
    body = client.get("/v1/cdrs").json()
    assert [c["call_id"] for c in body["data"]] == [str(recent["call_id"])]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"caller": "+3226660042"}, ["other_caller"]),
        ({"callee": "+3227770001"}, ["outbound"]),
        ({"disposition": "busy"}, ["busy"]),
        ({"disposition": "no-answer"}, ["no_answer"]),
        ({"direction": "outbound"}, ["outbound"]),
        ({"queue": "support"}, ["other_caller"]),
        ({"agent": "agent-9"}, ["busy", "outbound"]),
        ({"direction": "inbound", "disposition": "answered"}, ["plain", "other_caller"]),
    ],
)
def test_cdrs_filter_on_each_attribute(client, database_url, params, expected):
    rows = {
        "plain": cdr_row(T0),
        "busy": cdr_row(T0 + timedelta(minutes=1), disposition="busy", agents=["agent-9"]),
        "no_answer": cdr_row(T0 + timedelta(minutes=2), disposition="no-answer"),
        "outbound": cdr_row(T0 + timedelta(minutes=3), direction="outbound",
                            callee="+3227770001", agents=["agent-1", "agent-9"]),
        "other_caller": cdr_row(T0 + timedelta(minutes=4), caller="+3226660042",
                                queue="support"),
    }
    insert_cdrs(database_url, list(rows.values()))
    assert listed(client, **params) == [str(rows[name]["call_id"]) for name in expected]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"disposition": "hung-up"}, "disposition", "answered"),
        ({"direction": "sideways"}, "direction", "inbound"),
        ({"from": "2025-03-04T00:00:00Z", "to": "2025-03-03T00:00:00Z"}, "from", "after"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, "to", "31 days"),
        ({"from": "yesterday"}, "from", "datetime"),
        ({"to": "2025-03-03T00:00:00"}, "to", "timezone"),
        ({"limit": "0"}, "limit", "greater than or equal to 1"),
        ({"limit": "1001"}, "limit", "less than or equal to 1000"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "cursor"),
    ],
)
def test_cdrs_refuse_bad_parameters_naming_the_field_and_why(client, params, field, reason):
    response = client.get("/v1/cdrs", params=params)
    body = assert_problem(response, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", field)]
    assert reason in body["errors"][0]["message"]
    assert field in body["detail"]


def test_range_of_exactly_31_days_is_accepted(client):
    response = client.get("/v1/cdrs", params={"from": "2025-01-01T00:00:00Z",
                                              "to": "2025-02-01T00:00:00Z"})
    assert response.status_code == 200


@pytest.fixture
def many(database_url: str) -> list[dict[str, Any]]:
    """250 final CDRs; groups of five share a start instant so that paging
    must break ties on call_id."""
    rows = [cdr_row(T0 + timedelta(seconds=10 * (i // 5)), last_position=i) for i in range(250)]
    insert_cdrs(database_url, rows)
    return sorted(rows, key=lambda r: (r["started_at"], r["call_id"]))


def test_paging_with_next_cursor_returns_every_row_once_in_order(client, many):
    seen: list[str] = []
    params = {**DAY, "limit": "100"}
    for _ in range(10):
        body = client.get("/v1/cdrs", params=params).json()
        assert body["count"] == len(body["data"])
        seen += [c["call_id"] for c in body["data"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [str(r["call_id"]) for r in many]


def test_paging_by_link_header_ends_with_no_link(client, many):
    url: str | None = "/v1/cdrs?" + "&".join(f"{k}={v}" for k, v in {**DAY, "limit": 60}.items())
    pages: list[int] = []
    seen: list[str] = []
    while url is not None and len(pages) < 10:
        response = client.get(url)
        data = response.json()["data"]
        pages.append(len(data))
        seen += [c["call_id"] for c in data]
        url = next_link(response)
    assert pages == [60, 60, 60, 60, 10]
    assert seen == [str(r["call_id"]) for r in many]


def test_link_pins_the_defaulted_range(client, database_url):
    now = datetime.now(UTC)
    insert_cdrs(database_url, [cdr_row(now - timedelta(minutes=m)) for m in (1, 2, 3)])
    response = client.get("/v1/cdrs", params={"limit": "2"})
    link = next_link(response)
    assert link is not None
    query = dict(pair.split("=", 1) for pair in link.split("?", 1)[1].split("&"))
    assert {"from", "to", "cursor", "limit"} <= set(query)
    follow = client.get(link).json()
    assert follow["count"] == 1
    assert follow["next_cursor"] is None


def test_default_page_size_is_100(client, many):
    body = client.get("/v1/cdrs", params=DAY).json()
    assert body["count"] == 100
    assert body["next_cursor"] is not None


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_streams_the_whole_range_with_a_header_row(client, many, monkeypatch):
    monkeypatch.setattr(cdr_queries, "STREAM_CHUNK_ROWS", 60)  # several chunks, one header
    response = client.get("/v1/cdrs", params=DAY, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines()[0].split(",") == list(CDR_COLUMNS)
    rows = parse_csv(response.text)
    assert [r["call_id"] for r in rows] == [str(r["call_id"]) for r in many]
    assert "link" not in response.headers


def test_csv_cells_parse_back_to_the_stored_values(client, database_url):
    transfers = [{"kind": "attended", "target": "agent-9", "at": "2025-03-03T08:00:40+00:00"}]
    row = cdr_row(T0, agents=["agent-7", "agent-9"], transfers=transfers,
                  caller='"Smith, J" <+3225550100>')
    insert_cdrs(database_url, [row])
    [parsed] = parse_csv(client.get("/v1/cdrs", params=DAY,
                                    headers={"Accept": "text/csv"}).text)
    assert UUID(parsed["call_id"]) == row["call_id"]
    assert datetime.fromisoformat(parsed["started_at"]) == T0
    assert parsed["caller"] == '"Smith, J" <+3225550100>'
    assert parsed["tenant"] == "default"
    assert json.loads(parsed["agents"]) == ["agent-7", "agent-9"]
    assert json.loads(parsed["transfers"]) == transfers
    assert float(parsed["mos"]) == 4.2
    assert int(parsed["sip_status"]) == 200


@pytest.mark.parametrize("caller", ['=HYPERLINK("http://evil.example/x","click")',
                                    "@SUM(1+1)", "+1+cmd|' /C calc'!A0", "-2+3", "\t=1"])
def test_a_caller_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
        client, database_url, caller):
    """A caller's number is what its SIP From says: ``=HYPERLINK(...)`` is a valid one."""
    insert_cdrs(database_url, [cdr_row(T0, caller=caller, sip_call_id=caller)])
    [parsed] = parse_csv(client.get("/v1/cdrs", params=DAY,
                                    headers={"Accept": "text/csv"}).text)
    assert (parsed["caller"], parsed["sip_call_id"]) == ("'" + caller, "'" + caller)


def test_csv_honours_filters_and_paging(client, database_url, many):
    busy = cdr_row(T0 + timedelta(hours=2), disposition="busy")
    insert_cdrs(database_url, [busy])
    only_busy = client.get("/v1/cdrs", params={**DAY, "disposition": "busy"},
                           headers={"Accept": "text/csv"})
    assert [r["call_id"] for r in parse_csv(only_busy.text)] == [str(busy["call_id"])]

    first = client.get("/v1/cdrs", params={**DAY, "limit": "200", "disposition": "answered"},
                       headers={"Accept": "text/csv"})
    second = client.get(next_link(first), headers={"Accept": "text/csv"})
    ids = [r["call_id"] for r in parse_csv(first.text) + parse_csv(second.text)]
    assert ids == [str(r["call_id"]) for r in many]
    assert next_link(second) is None


def test_csv_of_an_empty_range_is_the_header_row_alone(client):
    response = client.get("/v1/cdrs", params=DAY, headers={"Accept": "text/csv"})
    assert response.text == ",".join(CDR_COLUMNS) + "\r\n"


def test_json_is_served_unless_csv_is_asked_for(client):
    response = client.get("/v1/cdrs", params=DAY, headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": [], "count": 0, "next_cursor": None}


def test_validation_errors_stay_problems_when_csv_is_asked_for(client):
    response = client.get("/v1/cdrs", params={"disposition": "x"}, headers={"Accept": "text/csv"})
    assert_problem(response, 422)
