"""The relay is woken by the store's NOTIFY at each append commit, not by a poll
(issue 10: polling every 50 ms added 25 ms on average to every event's way to
the projections). Its poll here is an hour: an event stored while it is idle
reaches Kafka only if the NOTIFY woke it."""

from __future__ import annotations

import threading
import uuid

import pytest

from application.calls import CallService
from devtools.simulate import lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from streams.relay import Relay, RelayConfig
from streams.topic_tail import last_committed_position
from tests.fixtures.processes import wait_for

pytestmark = pytest.mark.kafka


def test_an_event_stored_while_the_relay_is_idle_is_published_at_once(
        database_url: str, kafka_bootstrap: str) -> None:
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    config = RelayConfig(bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
                         partitions=2, idle_wait=3600.0)
    relay = Relay(service, database_url, config)
    thread = threading.Thread(target=relay.run, daemon=True)
    try:
        lifecycles(service, 1, "before")
        first = service.recorder.max_notification_id() or 0
        thread.start()
        wait_for(lambda: relay.position >= first, 60, "the relay to publish the first call")
        # Caught up: its next step found nothing, and it waits (an hour, or a NOTIFY).
        lifecycles(service, 1, "idle")
        head = service.recorder.max_notification_id() or 0
        wait_for(lambda: relay.position >= head, 60, "the relay to publish the second call")
        assert last_committed_position(kafka_bootstrap, relay.topics) == head
    finally:
        relay.stop()
        thread.join(30)
        service.close()
    assert not thread.is_alive()
