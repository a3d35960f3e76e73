"""The relay publishes every stored event exactly once, even when SIGKILLed mid-burst."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from application.calls import CallService
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, EventEnvelope, event_id
from streams.topics import topic_for
from tests.fixtures.processes import DialtoneProcess, wait_for

pytestmark = pytest.mark.kafka
CALLS = 600  # 4,800 events


def _relayed_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT max(position) FROM relay_positions").fetchone()
    return int(row[0] or 0) if row else 0


def _stored_event_ids(service: CallService) -> list[uuid.UUID]:
    notifications = service.recorder.select_notifications(start=1, limit=1_000_000)
    return [event_id(n.originator_id, n.originator_version) for n in notifications]


def _published_event_ids(bootstrap: str, topic: str) -> list[uuid.UUID]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        ids: list[uuid.UUID] = []
        last: dict[int, str] = {}
        for _ in range(600):  # bounded: at most ~2 minutes of polling
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    ids.append(_checked_cloudevent(record, last).id)
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                return ids
        pytest.fail("could not read the whole topic")
    finally:
        consumer.close()


def _checked_cloudevent(record: Any, last: dict[int, str]) -> EventEnvelope:
    """The CloudEvents Kafka binding (structured mode), and a sequence that sorts
    as a string within each partition (the extension compares strings)."""
    assert (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()) in record.headers
    sequence = json.loads(record.value)["sequence"]
    assert isinstance(sequence, str)
    assert len(sequence) == 20
    assert sequence > last.get(record.partition, "")
    last[record.partition] = sequence
    return EventEnvelope.from_json(record.value)


def test_relay_killed_mid_burst_publishes_every_event_exactly_once(
    database_url: str, kafka_bootstrap: str,
    dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "DIALTONE_TOPIC_PREFIX": prefix}
    relay = dialtone_processes(["relay", "--page-size", "200"], env)
    writer = threading.Thread(target=lifecycles, args=(service, CALLS, "burst"), kwargs={
        "batch": 10})
    writer.start()

    for kill in range(3):  # kill it three times while the burst is being written
        relayed = _relayed_position(database_url)
        wait_for(lambda r=relayed: _relayed_position(database_url) > r, 90,
                 f"the relay to publish (kill {kill})", processes=(relay,))
        relay.kill()
        relay = dialtone_processes(["relay", "--page-size", "200"], env)

    writer.join(120)
    total = CALLS * EVENTS_PER_LIFECYCLE
    wait_for(lambda: _relayed_position(database_url) >= total, 120,
             "the relay to catch up", processes=(relay,))

    stored = _stored_event_ids(service)
    published = _published_event_ids(kafka_bootstrap, topic_for("call", prefix))
    assert len(stored) == total
    duplicates = [i for i, n in Counter(published).items() if n > 1]
    assert duplicates == []
    assert set(published) == set(stored)
