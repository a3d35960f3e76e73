"""What is queued and when it is due, on a real PostgreSQL with a receiver on
127.0.0.1: resuming a disabled subscription sends its waiting deliveries at once,
and an event holding NUL (which jsonb cannot store) is queued and delivered rather
than stopping every later event's queueing."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.identity.model import Role
from application.webhooks.delivery import Dispatcher
from application.webhooks.settings import WebhookSettings
from dialtone.database import eventsourcing_env
from domain.call import Direction
from streams.webhooks import StoreFollower
from tests.integration.api_support import running_api
from tests.integration.webhook_support import T0, ended_call, receiving, subscribe

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SETTINGS = WebhookSettings(allow_nets="127.0.0.1/32", cdr_wait_s=0)


def _rounds(database_url: str, count: int) -> list[int]:
    dispatcher = Dispatcher(database_url, SETTINGS)

    async def rounds() -> list[int]:
        try:
            return [await dispatcher.run_once() for _ in range(count)]
        finally:
            await dispatcher.close()

    return asyncio.run(rounds())


def test_resuming_a_disabled_subscription_sends_its_waiting_deliveries_at_once(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three days of failures leave the subscription disabled and its head retried up
    to an hour later; once resumed, the next round sends it."""
    monkeypatch.setenv("DIALTONE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32")
    secret = new_secret()
    with receiving(secret) as receiver, running_api(database_url, role=Role.INTEGRATOR) as api:
        created = api.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["*"],
                                                 "secret": secret})
        hook = created.json()["id"]
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE webhook_subscriptions SET status = 'disabled', failing_since ="
                         " now() - interval '3 days' WHERE id = %s", (hook,))
            conn.execute(
                "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type,"
                " aggregate_id, aggregate_version, position, payload, attempts, next_attempt_at)"
                " VALUES (%s, gen_random_uuid(), 'dialtone.call.ringing.v1', gen_random_uuid(),"
                " 2, 10, '{\"id\": \"x\"}', 60, now() + interval '50 minutes')", (hook,))
        assert _rounds(database_url, 1) == [0]  # disabled: nothing is sent
        resumed = api.post(f"/v1/webhooks/{hook}/resume").json()
        assert (resumed["status"], resumed["failing_since"], resumed["pending"]) == (
            "active", None, 1)
        assert _rounds(database_url, 1) == [1]
        assert len(receiver.paths) == 1
        assert api.get(f"/v1/webhooks/{hook}").json()["pending"] == 0


def test_an_event_with_nul_is_delivered_and_the_next_call_still_queued(
        database_url: str) -> None:
    """A caller number holding NUL (whatever a trunk sent): its events are queued with
    U+FFFD in its place and delivered, and the call after it is queued too."""
    secret = new_secret()
    with receiving(secret) as receiver:
        hook = subscribe(database_url, receiver.url, secret)
        service = CallService(env=eventsourcing_env(database_url))
        try:
            follower = StoreFollower(service, database_url)
            nul = service.initiate_call(caller="1001\x00", callee="2001",
                                        direction=Direction.INBOUND, trunk="pstn",
                                        sip_call_id=f"nul-{time.time()}@test", occurred_at=T0)
            later = ended_call(service, f"after-nul-{time.time()}@test")
            assert follower.catch_up() == 5
        finally:
            service.close()
        with psycopg.connect(database_url) as conn:
            queued = dict(conn.execute(
                "SELECT aggregate_id, count(*) FROM webhook_deliveries"
                " WHERE subscription_id = %s GROUP BY aggregate_id", (hook,)).fetchall())
        assert queued == {nul: 1, later: 4}
        assert _rounds(database_url, 1) == [2]  # the head of each call's queue
    (initiated,) = [e for e in receiver.accepted if e["subject"] == str(nul)]
    assert initiated["data"]["caller"] == "1001\ufffd"
    assert receiver.bad_signatures == 0
