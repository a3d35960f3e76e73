"""GET /metrics on the real app and database: HTTP series by route template, process
memory, event append latency, projection lag, queue tallies, and the database's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dialtone import bootstrap
from domain.values import Direction
from tests.integration.api_support import running_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of one scrape, by (name, sorted labels)."""
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; NaN when the scrape has no such sample (fails every comparison)."""
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


def initiate(calls: Any) -> None:
    calls.initiate_call(caller="100", callee="200", direction=Direction.INBOUND, trunk=None,
                        sip_call_id=uuid4().hex, occurred_at=datetime.now(UTC))


def test_metrics_count_requests_by_route_template_and_report_the_platform(database_url):
    calls = bootstrap.call_service(database_url)
    centre = bootstrap.callcentre_service(database_url)
    runners = bootstrap.inprocess_runners(database_url)
    try:
        with running_api(database_url) as client:
            before = scrape(client)
            route = "/v1/calls/{call_id}"
            base = before.get(("dialtone_http_requests_total", (
                ("method", "GET"), ("route", route), ("status", "404"))), 0.0)
            appended = before.get(("dialtone_events_appended_total", (
                ("application", "CallService"),)), 0.0)
            centre.create_queue(f"sales-{uuid4().hex[:6]}", "Sales", "longest_idle",
                                occurred_at=datetime.now(UTC), service_level_s=20.0)
            initiate(calls)
            for runner in runners:
                runner.catch_up()
            # One more event the projections have not applied: lag 1.
            initiate(calls)
            for _ in range(2):
                assert client.get(f"/v1/calls/{uuid4()}").status_code == 404
            client.get("/no/such/path")
            after = scrape(client)
    finally:
        calls.close()
        centre.close()

    assert value(after, "dialtone_http_requests_total", method="GET", route=route,
                 status="404") == base + 2
    assert value(after, "dialtone_http_requests_total", method="GET", route="<unmatched>",
                 status="404") >= 1
    assert value(after, "dialtone_http_request_duration_seconds_count", method="GET",
                 route=route) >= 2
    assert not any("/v1/calls/" in dict(labels).get("route", "").replace(route, "")
                   for _, labels in after), "a concrete path leaked into a label"
    assert value(after, "process_resident_memory_bytes") > 10 * 1024 * 1024
    assert value(after, "dialtone_database_up") == 1
    assert value(after, "dialtone_events_appended_total", application="CallService") \
        == appended + 2
    assert value(after, "dialtone_event_append_seconds_count", application="CallService") >= 2
    assert value(after, "dialtone_projection_lag_events", projection="call_live",
                 application="CallService") == 1
    assert value(after, "dialtone_projection_position", projection="call_live",
                 application="CallService") >= 1
    offered = [labels for (name, labels) in after
               if name == "dialtone_queue_calls_offered_total"]
    assert any(dict(labels)["queue"].startswith("sales-") for labels in offered)


def test_metrics_report_the_database_down_and_still_answer(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        assert value(scrape(client), "dialtone_database_up") == 1
        server.stop()
        try:
            down = scrape(client)
            assert value(down, "dialtone_database_up") == 0
            # No lag figure survives from before: it would look current.
            assert not any(name == "dialtone_projection_lag_events" for name, _ in down)
        finally:
            server.start()
        assert value(scrape(client), "dialtone_database_up") == 1
