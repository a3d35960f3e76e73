"""The relay waits out PostgreSQL killed and restarted instead of exiting.

Before the fix the relay's thread raised on the lost connection and the
command exited 1 (logging it as a Kafka failure); a supervisor had to start it
again. Now it logs the database as the cause, backs off, and goes on.
PostgreSQL stays down until the relay has seen it fail, so the test does not
depend on where the kill catches the relay's connections.
"""

from __future__ import annotations

import uuid

import pytest

from application.calls import CallService
from devtools.simulate import lifecycles
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.postgres import EmbeddedPostgres
from projections.envelope import decode
from streams.relay import Relay, RelayConfig
from streams.topics import topic_for
from tests.fixtures.processes import wait_for
from tests.fixtures.reconcile import StoredEvent, compare_topic, topic_records
from tests.fixtures.threads import Watched

pytestmark = pytest.mark.kafka


def test_relay_waits_out_postgres_killed_and_restarted(
    own_postgres: EmbeddedPostgres, kafka_bootstrap: str,
) -> None:
    database_url = own_postgres.dsn("dialtone")
    ensure_database(database_url)
    apply_migrations(database_url)
    # eventsourcing's pool waits POSTGRES_CONNECT_TIMEOUT (30 s) for a connection,
    # 10 times, before it raises: 1 s here so that the relay sees the outage while
    # it lasts rather than only once it is over (either way it must go on).
    service = CallService(env=eventsourcing_env(database_url, POSTGRES_CONNECT_TIMEOUT="1"))
    config = RelayConfig(bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
                         partitions=4, page_size=20, retry_most=1.0)
    relay = Relay(service, database_url, config)
    thread = Watched(relay.run).start()
    errors = thread.errors
    try:
        lifecycles(service, 3, "before")
        wait_for(lambda: relay.position >= 3, 60, "the relay to publish")

        own_postgres.kill()
        wait_for(lambda: relay.failures >= 1 or bool(errors), 60,
                 "the relay to find the database gone")
        own_postgres.start()
        lifecycles(service, 3, "after")
        head = service.recorder.max_notification_id() or 0
        wait_for(lambda: relay.position >= head or bool(errors), 60, "the relay to catch up")

        assert errors == [], "the relay stopped on the database outage"
        assert thread.is_alive()
        stored = [StoredEvent(e.id, e.kind, e.subject, e.version) for e in decode(
            service, service.recorder.select_notifications(start=1, limit=10_000))]
        report = compare_topic(stored, topic_records(kafka_bootstrap,
                                                     topic_for("call", config.topic_prefix)))
        assert (report.lost, report.doubled, report.foreign) == ([], 0, [])
    finally:
        relay.stop()
        thread.join(30)
        service.close()
