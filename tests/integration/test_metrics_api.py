"""GET /metrics on the real app and database: HTTP series by route template, process
memory, event append latency, projection lag, queue tallies, and the database's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.health import HealthConfig
from dialtone import bootstrap
from domain.values import Direction
from tests.integration.api_support import beat, running_api
from tests.integration.test_api_health import subscribe_a_webhook

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


def test_metrics_report_each_live_heartbeat_and_the_required_services(database_url):
    """What DialtoneServiceNotRunning reads: the rows /healthz judges, but stopped ones."""
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("relay", "routing"), stale_after_beats=3, forget_after_s=3600)
        beat(database_url, "routing", "router-new", 1)
        beat(database_url, "routing", "router-lost", 60)
        beat(database_url, "routing", "router-lost-long-ago", 7200)  # forgotten
        beat(database_url, "routing", "router-rolled", 10, stopped=True)
        beat(database_url, "relay", "CallService", 60, host="relay-6b-q")
        samples = scrape(client)
    ages = {dict(labels)["heartbeat_instance"]: sample for (name, labels), sample
            in samples.items() if name == "dialtone_heartbeat_age_seconds"}
    assert set(ages) == {"router-new", "router-lost", "CallService"}
    assert 0 <= ages["router-new"] < 30
    assert 60 <= ages["router-lost"] < 90
    assert value(samples, "dialtone_heartbeat_stale_after_seconds", service="relay",
                 heartbeat_instance="CallService") == 15  # 3 beats of 5 s
    assert {dict(labels)["service"]: sample for (name, labels), sample in samples.items()
            if name == "dialtone_service_required"} == {"relay": 1, "routing": 1}


def test_metrics_require_webhook_delivery_while_a_subscription_is_active(database_url):
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("routing",))
        subscribe_a_webhook(database_url)
        samples = scrape(client)
    assert {dict(labels)["service"]: sample for (name, labels), sample in samples.items()
            if name == "dialtone_service_required"} == {
        "routing": 1, "webhooks": 1, "webhook-dispatcher": 1}


def test_metrics_report_the_database_down_and_still_answer(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("routing",))
        beat(dsn, "routing", "router-a", 1)
        up = scrape(client)
        assert value(up, "dialtone_database_up") == 1
        assert value(up, "dialtone_service_required", service="routing") == 1
        assert value(up, "dialtone_heartbeat_age_seconds", service="routing",
                     heartbeat_instance="router-a") >= 0
        server.stop()
        try:
            down = scrape(client)
            assert value(down, "dialtone_database_up") == 0
            # No lag figure survives from before: it would look current. Nor does a
            # heartbeat, nor a required service (it would look unserved).
            assert not any(name in ("dialtone_projection_lag_events",
                                    "dialtone_heartbeat_age_seconds",
                                    "dialtone_service_required") for name, _ in down)
        finally:
            server.start()
        assert value(scrape(client), "dialtone_database_up") == 1
