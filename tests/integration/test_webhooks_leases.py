"""The dispatcher's leases and recording, on a real PostgreSQL with a slow receiver
on 127.0.0.1: a round longer than one attempt is not sent twice by a second
dispatcher, outcomes are recorded as attempts finish and only while the row is
still this dispatcher's, and a subscription deleted mid-round costs the other
subscriptions nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.webhooks.delivery import Dispatcher
from application.webhooks.settings import WebhookSettings
from dialtone.database import eventsourcing_env
from streams.webhooks import StoreFollower
from tests.integration.webhook_support import ended_call, receiving, subscribe

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SLOW = WebhookSettings(allow_nets="127.0.0.1/32", timeout_s=3.0, cdr_wait_s=0)


def _queue_calls(database_url: str, count: int, name: str) -> None:
    service = CallService(env=eventsourcing_env(database_url))
    try:
        for n in range(count):
            ended_call(service, f"{name}-{n}@test")
        StoreFollower(service, database_url).catch_up()
    finally:
        service.close()


def _one_round(database_url: str, settings: WebhookSettings) -> int:
    dispatcher = Dispatcher(database_url, settings)

    async def round_() -> int:
        try:
            return await dispatcher.run_once()
        finally:
            await dispatcher.close()

    return asyncio.run(round_())


def _rows(database_url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, args).fetchall()


def test_a_second_dispatcher_never_sends_what_a_long_round_still_holds(
        database_url: str) -> None:
    """30 deliveries, one at a time, each answered after 0.35 s (well within the 2 s
    timeout): a 10.5 s round, past the old lease (2 x timeout + 5 s = 9 s). A second
    dispatcher starting at 9.4 s sends only what the first has cleared the way for
    (the next events of delivered calls), never a delivery the first still holds."""
    secret = new_secret()
    first = WebhookSettings(allow_nets="127.0.0.1/32", timeout_s=2.0, cdr_wait_s=0,
                            batch=30, concurrency=1)
    second = first.model_copy(update={"batch": 2})
    with receiving(secret, ["slow"] * 1000) as receiver:
        receiver.hold_s = 0.35
        subscribe(database_url, receiver.url, secret)
        _queue_calls(database_url, 30, "lease")
        made: list[int] = []

        def later(delay: float, settings: WebhookSettings) -> None:
            time.sleep(delay)
            made.append(_one_round(database_url, settings))

        threads = [threading.Thread(target=later, args=(0.0, first)),
                   threading.Thread(target=later, args=(9.4, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        sent = Counter(receiver.ids())
    assert sorted(made) == [2, 30]
    assert [event for event, times in sent.items() if times > 1] == []
    twice = _rows(database_url, "SELECT delivery_id FROM webhook_attempts"
                  " GROUP BY delivery_id HAVING count(*) > 1")
    assert twice == []


def test_an_outcome_is_recorded_as_its_attempt_ends_and_only_while_the_row_is_ours(
        database_url: str) -> None:
    """Two calls' first events, one at a time, 1.5 s each: the first is delivered (and
    logged) while the second is still in flight. The second's row is then taken over
    (as another dispatcher would once a lease ran out): its outcome is not recorded
    as this dispatcher's."""
    secret = new_secret()
    settings = SLOW.model_copy(update={"concurrency": 1})
    with receiving(secret, ["slow"] * 2) as receiver:
        receiver.hold_s = 1.5
        hook = subscribe(database_url, receiver.url, secret)
        _queue_calls(database_url, 2, "ours")
        logged: list[tuple[Any, ...]] = []

        def meanwhile() -> None:
            deadline = time.monotonic() + 2.5  # the second attempt ends at 3 s at best
            while not logged and time.monotonic() < deadline:
                time.sleep(0.05)
                logged.extend(_rows(database_url, "SELECT d.aggregate_version, d.state FROM"
                                    " webhook_attempts a JOIN webhook_deliveries d ON"
                                    " d.id = a.delivery_id WHERE a.subscription_id = %s", hook))
            with psycopg.connect(database_url) as conn:
                conn.execute("UPDATE webhook_deliveries SET claimed_until = now() + interval"
                             " '1 minute' WHERE subscription_id = %s AND state = 'pending'"
                             " AND claimed_until IS NOT NULL", (hook,))

        watcher = threading.Thread(target=meanwhile)
        watcher.start()
        assert _one_round(database_url, settings) == 2
        watcher.join()
        assert len(receiver.ids()) == 2  # both were sent
    assert logged == [(1, "delivered")]  # the first, recorded while the second was in flight
    taken = _rows(database_url, "SELECT state, attempts FROM webhook_deliveries"
                  " WHERE subscription_id = %s AND claimed_until > now()", hook)
    assert taken == [("pending", 0)]  # not recorded as ours
    assert len(_rows(database_url, "SELECT id FROM webhook_attempts"
                     " WHERE subscription_id = %s", hook)) == 1


def _deliveries(database_url: str, hook: UUID) -> list[tuple[Any, ...]]:
    return _rows(database_url, "SELECT aggregate_version, state, attempts FROM"
                 " webhook_deliveries WHERE subscription_id = %s AND aggregate_version = 1"
                 " ORDER BY id", hook)


def test_deleting_a_subscription_mid_round_keeps_the_other_subscriptions_outcomes(
        database_url: str) -> None:
    """A and B each have two calls' first events in flight (1 s answers); A is deleted
    at 0.4 s, as DELETE /v1/webhooks/{id} does. The round still records B's
    deliveries and their log rows, and the next round does not send them again."""
    secret = new_secret()
    with receiving(secret, ["slow"] * 2) as at_a, receiving(secret, ["slow"] * 4) as at_b:
        at_a.hold_s = at_b.hold_s = 1.0
        a = subscribe(database_url, at_a.url, secret)
        b = subscribe(database_url, at_b.url, secret)
        _queue_calls(database_url, 2, "deleted")

        def delete_a() -> None:
            time.sleep(0.4)
            with psycopg.connect(database_url) as conn:
                conn.execute("DELETE FROM webhook_subscriptions WHERE id = %s", (a,))

        deleter = threading.Thread(target=delete_a)
        deleter.start()
        assert _one_round(database_url, SLOW) == 4  # no error for the deleted rows
        deleter.join()
        assert _deliveries(database_url, b) == [(1, "delivered", 1)] * 2
        assert len(_rows(database_url, "SELECT id FROM webhook_attempts"
                         " WHERE subscription_id = %s", b)) == 2
        assert _one_round(database_url, SLOW) == 2  # B's next events, not its first again
        sent = Counter(at_b.ids())
    assert len(at_a.ids()) == 2
    assert len(sent) == 4  # the calls' first events, then their second ones
    assert [event for event, times in sent.items() if times > 1] == []
