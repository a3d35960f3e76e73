"""`dialtone webhooks`' consumer group waits out PostgreSQL killed and restarted.

Before the fix its loop raised on the lost connection and the command exited 1,
and nothing queued deliveries until a supervisor started it again. Retrying alone
is not enough either: the consumer has already moved past the batch whose
transaction failed, so the next poll would skip it for good (its offsets are not
committed, but only a restart or a rebalance reads them again). Now the batch is
read again after the back-off and every event's delivery is queued once.
PostgreSQL is killed before the follower starts and stays down until the follower
has failed on a batch, so the test does not depend on timing.
"""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.follow import Backoff
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.postgres import EmbeddedPostgres
from streams.topics import topic_for
from streams.webhooks import CONSUMER_GROUP, KafkaFollower
from tests.fixtures.threads import Watched
from tests.integration.webhook_support import ended_call, relay_all, subscribe, wait_for

pytestmark = pytest.mark.kafka
CALLS = 3
EVENTS = CALLS * 4  # each ended call: initiated, ringing, answered, ended


def _published(database_url: str, bootstrap: str, prefix: str) -> None:
    """CALLS ended calls, stored and relayed to the calls topic."""
    with CallService(env=eventsourcing_env(database_url)) as service:
        for n in range(CALLS):
            ended_call(service, f"outage{n}@test")
        relay_all(service, database_url, bootstrap, prefix)


def _queued(database_url: str) -> list[tuple[object, int]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT event_id, count(*) FROM webhook_deliveries"
                            " GROUP BY event_id").fetchall()


def test_consumer_group_waits_out_postgres_killed_and_queues_each_delivery_once(
        own_postgres: EmbeddedPostgres, kafka_bootstrap: str) -> None:
    database_url = own_postgres.dsn("dialtone")
    ensure_database(database_url)
    apply_migrations(database_url)
    prefix = f"t{uuid4().hex[:8]}."
    subscribe(database_url, "https://hooks.example.com/dialtone", new_secret())
    _published(database_url, kafka_bootstrap, prefix)

    own_postgres.kill()
    follower = KafkaFollower(kafka_bootstrap, [topic_for("call", prefix)], database_url,
                             group_id=f"{prefix}{CONSUMER_GROUP}", poll_ms=200,
                             backoff=Backoff(0.2, 1.0))
    thread = Watched(follower.run).start()
    errors = thread.errors
    try:
        wait_for(lambda: follower.failures >= 1 or bool(errors), 60,
                 "the follower to fail on a batch with the database gone")
        own_postgres.start()
        wait_for(lambda: bool(errors) or len(_queued(database_url)) >= EVENTS, 60,
                 "every event's delivery to be queued")

        assert errors == [], "the follower stopped on the database outage"
        assert thread.is_alive()
        queued = _queued(database_url)
        assert len(queued) == EVENTS
        assert {count for _, count in queued} == {1}
    finally:
        follower.stop()
        thread.join(30)
        follower.close()
