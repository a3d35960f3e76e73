"""`dialtone relay --from-position/--to-position` re-seeds a topic with a range of the store."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition

from devtools.simulate import lifecycles
from dialtone import bootstrap
from dialtone.migrations import apply_migrations
from projections.envelope import EventEnvelope, event_id
from streams.topics import topic_for
from tests.fixtures.processes import DIALTONE

pytestmark = pytest.mark.kafka


def _read_topic(bootstrap_servers: str, topic: str) -> list[EventEnvelope]:
    """Every committed record of the topic (bounded polling)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                             isolation_level="read_committed", enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"topic {topic} does not exist"
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        envelopes: list[EventEnvelope] = []
        for _ in range(300):  # at most ~60 s
            for records in consumer.poll(timeout_ms=200).values():
                envelopes += [EventEnvelope.from_json(r.value) for r in records]
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                return envelopes
        pytest.fail(f"could not read the whole of {topic}")
    finally:
        consumer.close()


def _topic_exists(bootstrap_servers: str, topic: str) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        return topic in consumer.topics()
    finally:
        consumer.close()


def _republish(database_url: str, kafka: str, prefix: str, *args: str) -> str:
    result = subprocess.run(
        [str(DIALTONE), "relay", *args],
        env={**os.environ, "DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka,
             "DIALTONE_TOPIC_PREFIX": prefix},
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_republishing_a_range_gives_exactly_its_stored_events_with_their_ids(
    database_url: str, kafka_bootstrap: str,
) -> None:
    apply_migrations(database_url)
    calls = bootstrap.call_service(database_url)
    lifecycles(calls, 40, "republish")  # 320 events
    stored = calls.recorder.select_notifications(start=101, stop=220, limit=1000)
    assert [n.id for n in stored] == list(range(101, 221))
    prefix = f"t{uuid.uuid4().hex[:8]}."

    out = _republish(database_url, kafka_bootstrap, prefix, "--from-position", "101",
                     "--to-position", "220", "--application", "CallService")

    assert "republished 120 events of CallService (positions 101..220)" in out
    published = _read_topic(kafka_bootstrap, topic_for("call", prefix))
    assert sorted(e.position for e in published) == list(range(101, 221))
    assert Counter(e.id for e in published) == Counter(
        event_id(uuid.UUID(str(n.originator_id)), n.originator_version) for n in stored)
    # Only the chosen application: the call-centre topics were not even made.
    assert not _topic_exists(kafka_bootstrap, topic_for("agent", prefix))

    # Again over an overlapping range, into the same (now live) topic: the copies
    # carry the same ids, which is what consumers drop duplicates by.
    _republish(database_url, kafka_bootstrap, prefix, "--from-position", "201",
               "--application", "CallService")
    again = _read_topic(kafka_bootstrap, topic_for("call", prefix))
    by_id = Counter(e.id for e in again)
    assert {e.position for e in again} == set(range(101, 321))
    assert sorted(e.position for e in again if by_id[e.id] == 2) == sorted(
        [*range(201, 221), *range(201, 221)])
