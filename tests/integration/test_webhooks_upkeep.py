"""The webhook dispatcher's upkeep on a real PostgreSQL: retention (old delivered
rows and old delivery-log attempts go, from the dispatcher's own loop; recent and
pending ones stay) and its heartbeat, as `/healthz` reports it."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.webhooks.settings import WebhookSettings
from dialtone.commands.webhooks import embedded
from dialtone.migrations import apply_migrations
from streams.webhooks import DISPATCHER_SERVICE, FOLLOWER_SERVICE, DispatcherThread
from tests.integration.api_support import running_api
from tests.integration.webhook_support import subscribe, wait_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

DAY = "interval '1 day'"


def _delivery(conn: psycopg.Connection[Any], subscription: UUID, version: int, state: str,
              age: str) -> int:
    """A delivery row `age` old (an SQL interval); delivered ones were delivered then."""
    row = conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, aggregate_id,"
        " aggregate_version, position, payload, state, created_at, delivered_at,"
        " next_attempt_at) VALUES (%s, %s, 'dialtone.call.initiated.v1', %s, %s, %s, '{}',"
        f" %s, now() - {age}, CASE WHEN %s = 'delivered' THEN now() - {age} END,"
        f" now() + {DAY}) RETURNING id",  # pending ones are not due: nothing is sent
        (subscription, uuid4(), uuid4(), version, version, state, state)).fetchone()
    assert row is not None
    return int(row[0])


def _attempt(conn: psycopg.Connection[Any], subscription: UUID, delivery: int,
             age: str) -> int:
    row = conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, subscription_id, attempt, attempted_at,"
        f" status_code, duration_ms) VALUES (%s, %s, 1, now() - {age}, 500, 1.0) RETURNING id",
        (delivery, subscription)).fetchone()
    assert row is not None
    return int(row[0])


def _ids(database_url: str, table: str) -> set[int]:
    with psycopg.connect(database_url) as conn:
        return {r[0] for r in conn.execute(f"SELECT id FROM {table}").fetchall()}


def test_retention_deletes_old_delivered_rows_and_attempts_only(database_url: str) -> None:
    apply_migrations(database_url)
    subscription = subscribe(database_url, "https://hooks.example.com/x", new_secret())
    with psycopg.connect(database_url) as conn:
        old_delivered = [_delivery(conn, subscription, n, "delivered", f"{8} * {DAY}")
                         for n in range(1, 6)]  # more than one batch of 2
        recent_delivered = _delivery(conn, subscription, 10, "delivered", "interval '1 hour'")
        old_pending = _delivery(conn, subscription, 11, "pending", f"{8} * {DAY}")
        gone_attempts = [_attempt(conn, subscription, old_delivered[0], f"{8} * {DAY}"),
                         _attempt(conn, subscription, old_pending, f"{8} * {DAY}")]
        kept_attempts = {_attempt(conn, subscription, old_pending, "interval '1 hour'"),
                         _attempt(conn, subscription, recent_delivered, "interval '1 hour'")}
    assert set(gone_attempts) <= _ids(database_url, "webhook_attempts")

    settings = WebhookSettings(retention_s=7 * 24 * 3600.0, prune_batch=2, prune_every_s=0.05,
                               poll_s=0.05)
    dispatcher = DispatcherThread(database_url, settings)
    dispatcher.start()
    try:
        wait_for(lambda: _ids(database_url, "webhook_deliveries")
                 == {recent_delivered, old_pending}, 30, "old delivered rows deleted")
        wait_for(lambda: _ids(database_url, "webhook_attempts") == kept_attempts, 30,
                 "old attempts deleted")
    finally:
        dispatcher.stop()


def _services(api: Any) -> dict[tuple[str, str], str]:
    services = api.get("/healthz").json()["services"]
    return {(s["service"], s["instance"]): s["status"] for s in services}


def test_the_embedded_dispatcher_and_followers_beat_and_stop_cleanly(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `dialtone up` runs writes service_heartbeats rows that /healthz reports."""
    monkeypatch.setenv("DIALTONE_HEARTBEAT_INTERVAL_S", "0.2")
    with running_api(database_url) as api:
        runners = embedded(database_url)
        dispatcher = runners.dispatcher.heartbeat.instance
        runners.start()
        try:
            wait_for(lambda: _services(api).get((DISPATCHER_SERVICE, dispatcher)) == "running",
                     30, "the dispatcher's heartbeat")
            followers = {k: v for k, v in _services(api).items() if k[0] == FOLLOWER_SERVICE}
            assert followers
            assert set(followers.values()) == {"running"}, followers
        finally:
            runners.stop()
        assert _services(api)[(DISPATCHER_SERVICE, dispatcher)] == "stopped"
