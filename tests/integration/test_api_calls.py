"""GET /v1/calls, /v1/calls/{id} and /v1/calls/{id}/timeline on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.integration.api_support import (
    assert_problem,
    cdr_row,
    insert_cdrs,
    insert_events,
    insert_live,
    live_row,
    running_api,
    utc,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = utc("2025-03-03T09:00:00")


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with running_api(database_url) as client:
        yield client


@pytest.fixture
def live_calls(database_url: str, client: TestClient) -> dict[str, dict[str, Any]]:
    """Four calls in progress that differ in one attribute each, started in
    an order unlike their insertion order."""
    calls = {
        "held": live_row(T0.replace(minute=3), status="held", on_hold_since=T0.replace(minute=5)),
        "outbound": live_row(T0.replace(minute=1), direction="outbound", queue=None,
                             caller="agent-7", callee="+3227770001"),
        "support": live_row(T0.replace(minute=2), queue="support", caller="+3226660042"),
        "ringing": live_row(T0.replace(minute=0), status="ringing", answered_at=None,
                            callee="+3225550123"),
    }
    insert_live(database_url, list(calls.values()))
    return calls


def listed(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/calls", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return [call["call_id"] for call in body["data"]]


def ids(calls: dict[str, dict[str, Any]], *names: str) -> list[str]:
    return [str(calls[name]["call_id"]) for name in names]


def test_calls_in_progress_are_listed_oldest_first(client, live_calls):
    assert listed(client) == ids(live_calls, "ringing", "outbound", "support", "held")


def test_listed_call_carries_its_live_state(client, live_calls):
    held = next(c for c in client.get("/v1/calls").json()["data"]
                if c["call_id"] == str(live_calls["held"]["call_id"]))
    assert held["status"] == "held"
    assert held["on_hold_since"] == "2025-03-03T09:05:00Z"
    assert held["queue"] == "sales"
    assert held["target"] == "agent-7"
    assert held["ended_at"] is None
    assert held["disposition"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "ringing"}, ["ringing"]),
        ({"status": "held"}, ["held"]),
        ({"direction": "outbound"}, ["outbound"]),
        ({"caller": "+3226660042"}, ["support"]),
        ({"callee": "+3225550123"}, ["ringing"]),
        ({"queue": "support"}, ["support"]),
        ({"queue": "sales", "status": "answered"}, []),
        ({"queue": "sales", "direction": "inbound"}, ["ringing", "held"]),
    ],
)
def test_calls_filter_on_each_attribute(client, live_calls, params, expected):
    assert listed(client, **params) == ids(live_calls, *expected)


def test_calls_refuse_an_unknown_status_naming_the_parameter(client):
    body = assert_problem(client.get("/v1/calls", params={"status": "dancing"}), 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", "status")]
    assert "ringing" in body["errors"][0]["message"]


def test_call_in_progress_is_read_from_the_live_table(client, database_url, live_calls):
    call = live_calls["held"]
    # The cdr row of a call in progress lags the live row; the live one wins.
    insert_cdrs(database_url, [cdr_row(call["started_at"], call_id=call["call_id"],
                                       status="answered", ended_at=None, disposition=None)])
    body = client.get(f"/v1/calls/{call['call_id']}").json()
    assert (body["status"], body["on_hold_since"]) == ("held", "2025-03-03T09:05:00Z")


def test_ended_call_is_read_from_its_cdr(client, database_url):
    row = cdr_row(T0, final_callee="agent-9", disposition="abandoned", answered_at=None)
    insert_cdrs(database_url, [row])
    response = client.get(f"/v1/calls/{row['call_id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ended"
    assert body["target"] == "agent-9"
    assert body["ended_at"] == "2025-03-03T09:01:10Z"
    assert body["disposition"] == "abandoned"
    assert body["answered_at"] is None


def test_unknown_call_is_a_not_found_problem(client):
    call_id = uuid4()
    body = assert_problem(client.get(f"/v1/calls/{call_id}"), 404)
    assert str(call_id) in body["detail"]
    assert body["instance"] == f"/v1/calls/{call_id}"


@pytest.mark.parametrize("path", ["/v1/calls/not-a-uuid", "/v1/calls/not-a-uuid/timeline"])
def test_call_id_that_is_not_a_uuid_is_a_validation_problem(client, path):
    body = assert_problem(client.get(path), 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("path", "call_id")]


def test_timeline_lists_events_in_version_order(client, database_url):
    call_id = uuid4()
    insert_events(database_url, call_id, ["initiated", "routed", "ringing", "answered"], T0)
    insert_events(database_url, uuid4(), ["initiated"], T0)  # another call's
    response = client.get(f"/v1/calls/{call_id}/timeline")
    assert response.status_code == 200
    body = response.json()
    assert body["call_id"] == str(call_id)
    assert [e["version"] for e in body["events"]] == [1, 2, 3, 4]
    first = body["events"][0]
    assert first["type"] == "dialtone.call.initiated.v1"
    assert first["occurred_at"] == "2025-03-03T09:00:01Z"
    assert first["position"] == 101
    assert first["data"] == {"n": 1}


def test_timeline_of_unknown_call_is_a_not_found_problem(client):
    assert_problem(client.get(f"/v1/calls/{uuid4()}/timeline"), 404)
