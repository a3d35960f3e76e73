"""GET /healthz and /readyz, and how the API behaves while its database is down."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.authenticator import Authenticator
from api.health import HealthConfig
from application.identity.settings import AuthSettings
from dialtone.migrations import apply_migrations
from tests.integration.api_support import api_key, assert_problem, beat, running_api


def test_health_is_ok_when_the_database_answers(database_url):
    with running_api(database_url) as client:
        response = client.get("/healthz")
        ready = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "problems": [], "services": [],
                               "missing_services": [], "projections": []}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


def _report(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    body = response.json()
    return response.status_code, body["health"] if response.status_code == 503 else body


def test_a_lost_replica_degrades_health_while_another_runs_and_is_forgotten_later(
        database_url):
    """A router pod lost without SIGTERM leaves its row; its replacement beats under its
    own pod name. Before, /healthz failed (503) until someone deleted the row."""
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("routing",), forget_after_s=3600)
        beat(database_url, "routing", "router-lost-long-ago", 7200)
        beat(database_url, "routing", "router-lost", 60)
        beat(database_url, "routing", "router-rolled", 7200, stopped=True)
        beat(database_url, "routing", "router-new", 1)
        status, body = _report(client)
    assert status == 200, body
    assert body["status"] == "degraded"
    assert [(s["instance"], s["status"]) for s in body["services"]] == [
        ("router-lost", "stale"), ("router-new", "running")]
    assert body["missing_services"] == []
    [problem] = body["problems"]
    assert problem.startswith("replica routing router-lost is stale: no heartbeat for 60 s")


def test_a_stale_replica_with_nothing_running_beside_it_fails_however_old(database_url):
    """The only router hung, or lost and never rescheduled: nothing covers its row."""
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("routing",), forget_after_s=3600)
        beat(database_url, "routing", "router-hung", 7200)
        beat(database_url, "routing", "router-rolled", 10, stopped=True)  # covers nothing
        status, body = _report(client)
    assert status == 503
    assert body["problems"] == ["service routing router-hung is stale: no heartbeat for "
                                "7200 s", "no running routing"]


def test_a_stale_singleton_fails_beside_a_running_instance_of_its_service(database_url):
    """The relay's instance is its application, which a restarted relay takes over:
    another relay (another application's) covers nothing."""
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(forget_after_s=3600)  # type: ignore[attr-defined]
        beat(database_url, "relay", "CallService", 7200, host="relay-6b-q")
        beat(database_url, "relay", "CallCentreService", 1, host="relay-7c-r")
        status, body = _report(client)
    assert status == 503
    assert body["problems"] == ["service relay CallService is stale: no heartbeat for 7200 s"]


def subscribe_a_webhook(database_url: str, status: str = "active") -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO webhook_subscriptions (id, tenant, url, event_types, secret,"
                     " status) VALUES (%s, 'acme', 'https://hooks.example.com/d', '{*}',"
                     " 'whsec_x', %s)", (uuid.uuid4(), status))


def test_webhook_delivery_is_required_while_a_subscription_is_active(database_url):
    """Before, nothing noticed that no `dialtone webhooks` ran: the tenants' deliveries
    waited, and /healthz said ok."""
    with running_api(database_url) as client:
        client.app.state.health = HealthConfig(  # type: ignore[attr-defined]
            required_services=("routing",))
        beat(database_url, "routing", "router-a", 1)
        subscribe_a_webhook(database_url, "paused")
        assert _report(client)[0] == 200  # paused: nothing to deliver
        subscribe_a_webhook(database_url)
        status, body = _report(client)
        beat(database_url, "webhooks", "kafka@webhooks-a", 1)
        beat(database_url, "webhook-dispatcher", "webhooks-a", 1)
        delivering, _ = _report(client)
    assert status == 503
    assert body["missing_services"] == ["webhooks", "webhook-dispatcher"]
    assert body["problems"] == ["no running webhooks", "no running webhook-dispatcher"]
    assert delivering == 200


def test_not_ready_until_the_database_is_migrated(database_url):
    with TestClient(create_app(database_url)) as client:
        body = assert_problem(client.get("/readyz"), 503)
        assert "service_heartbeats" in body["detail"]
        assert body["type"] == "urn:dialtone:problem:not-ready"
        apply_migrations(database_url)
        assert client.get("/readyz").status_code == 200


def test_api_answers_503_while_the_database_is_down_and_recovers_by_itself(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        assert client.get("/healthz").status_code == 200

        server.stop()
        for path in ("/healthz", "/v1/calls"):
            body = assert_problem(client.get(path), 503)
            assert body["title"] == "Database unavailable"
            assert "Connection refused" not in body["detail"]  # no internals leak
        assert client.get("/healthz").headers["retry-after"] == "5"

        server.start()
        response = client.get("/healthz")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok"
        assert client.get("/v1/calls").json() == {"data": [], "count": 0}


def test_api_answers_503_when_the_server_dies_under_an_open_connection(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        assert client.get("/healthz").status_code == 200  # a pooled connection now exists
        assert client.get("/readyz").status_code == 200
        server.kill()
        assert_problem(client.get("/healthz"), 503)
        body = assert_problem(client.get("/readyz"), 503)
        assert body["title"] == "Database unavailable"
        server.start()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_api_starts_while_the_database_is_down_and_serves_once_it_is_up(restartable):
    server, dsn = restartable
    apply_migrations(dsn)
    key = api_key(dsn)
    server.stop()
    app = create_app(dsn)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        assert_problem(client.get("/v1/cdrs"), 503)
        server.start()
        assert client.get("/v1/cdrs").json() == {"data": [], "count": 0, "next_cursor": None}


def test_invalid_request_is_refused_as_invalid_even_while_the_database_is_down(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        # The caller's credential is checked first (in the database): keep it cached.
        client.app.state.auth = Authenticator(AuthSettings(state_ttl_s=300))  # type: ignore[attr-defined]
        assert client.get("/v1/cdrs").status_code == 200
        server.stop()
        body = assert_problem(client.get("/v1/cdrs", params={"limit": "0"}), 422)
        assert body["errors"][0]["field"] == "limit"
        assert_problem(client.get("/v1/calls/not-a-uuid"), 422)
        assert_problem(client.get("/v1/cdrs", headers={"Accept": "text/csv"}), 503)
