"""A stored event this release cannot decode (a newer release's class, read after a
rollback) stops no follower of the log: the routing process and the webhooks' store
follower leave it out and go on. Before, each failed on its page for ever: no call
was routed to an agent again, and no webhook was sent again."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.callcentre import CallCentreService
from application.calls import CallService
from application.router import RoutingProcess
from dialtone.database import eventsourcing_env
from streams.webhooks import StoreFollower
from tests.integration.webhook_support import ended_call, subscribe

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _a_newer_releases_event(database_url: str, table: str) -> None:
    """A copy of the store's first event under a class this release does not have."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                     f" SELECT originator_id, 1000, 'domain.newer:Thing.Happened', state"
                     f" FROM {table} ORDER BY notification_id LIMIT 1")


def test_the_routing_process_leaves_out_what_it_cannot_decode(database_url: str) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        service.create_agent("alice", "Alice", occurred_at=T0)
        _a_newer_releases_event(database_url, "callcentreservice_events")
        service.create_agent("bob", "Bob", occurred_at=T0)
        router = RoutingProcess(service)
        assert router.pull() == 3
        assert router.position == service.recorder.max_notification_id()


def test_the_webhooks_store_follower_delivers_the_rest(database_url: str) -> None:
    subscribe(database_url, "https://hooks.example.com/dialtone", new_secret())
    with CallService(env=eventsourcing_env(database_url)) as service:
        ended_call(service, "before@test")
        _a_newer_releases_event(database_url, "callservice_events")
        ended_call(service, "after@test")
        assert StoreFollower(service, database_url).catch_up() == 9
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_deliveries").fetchone() == (8,)
