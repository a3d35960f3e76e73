"""The Kafka harness serves a real broker: messages round-trip in order per key,
and survive the broker being killed and restarted on the same data directory."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.serializer import DefaultSerializer

from devtools.kafka import KafkaBroker
from tests.fixtures.kafka import create_topic

pytestmark = pytest.mark.kafka

KEYS = [f"call-{n}" for n in range(8)]


def _produce(bootstrap: str, topic: str, per_key: int, start: int = 0) -> int:
    """Send ``per_key`` numbered messages for every key, interleaved; wait for every ack."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        key_serializer=DefaultSerializer(), value_serializer=DefaultSerializer(),
    )
    try:
        futures = [producer.send(topic, key=key, value=f"{key}:{seq}")
                   for seq in range(start, start + per_key) for key in KEYS]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=10)
    return len(futures)


def _consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False,
        key_deserializer=DefaultSerializer(), value_deserializer=DefaultSerializer(),
    )


def _drain(consumer: KafkaConsumer, expected: int, seconds: float = 30.0) -> list[tuple[int, str]]:
    """Poll until ``expected`` records arrived, then a little longer to catch any extra."""
    records: list[tuple[int, str]] = []
    deadline = time.monotonic() + seconds
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend((record.partition, record.value) for record in batch)
    for batch in consumer.poll(timeout_ms=1000).values():
        records.extend((record.partition, record.value) for record in batch)
    return records


def _sequences_by_key(records: list[tuple[int, str]]) -> dict[str, list[int]]:
    by_key: dict[str, list[int]] = defaultdict(list)
    for _, value in records:
        key, seq = value.split(":")
        by_key[key].append(int(seq))
    return dict(by_key)


def test_messages_round_trip_exactly_once_in_order_per_key(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    create_topic(kafka_bootstrap, unique_topic, partitions=4)
    sent = _produce(kafka_bootstrap, unique_topic, per_key=50)

    consumer = _consumer(kafka_bootstrap, unique_topic, group=f"g-{uuid.uuid4().hex}")
    try:
        records = _drain(consumer, expected=sent)
    finally:
        consumer.close()

    assert len(records) == sent == 400
    assert _sequences_by_key(records) == {key: list(range(50)) for key in KEYS}
    partitions_by_key: dict[str, set[int]] = defaultdict(set)
    for partition, value in records:
        partitions_by_key[value.split(":")[0]].add(partition)
    assert all(len(parts) == 1 for parts in partitions_by_key.values())
    # Several partitions in use, or "in order per key" would be trivially true.
    assert len(set().union(*partitions_by_key.values())) > 1


def test_messages_and_committed_offsets_survive_a_broker_kill(
    killable_kafka_broker: KafkaBroker, unique_topic: str
) -> None:
    broker = killable_kafka_broker  # shared with the other broker-kill tests (one JVM)
    create_topic(broker.bootstrap, unique_topic, partitions=4)
    first = _produce(broker.bootstrap, unique_topic, per_key=20)
    group = f"g-{uuid.uuid4().hex}"
    consumer = _consumer(broker.bootstrap, unique_topic, group)
    try:
        assert len(_drain(consumer, expected=first)) == first
        consumer.commit()
    finally:
        consumer.close()

    broker.kill()
    assert not broker.is_running()
    broker.start()

    everything = _consumer(broker.bootstrap, unique_topic, group=f"g-{uuid.uuid4().hex}")
    try:
        replayed = _drain(everything, expected=first)
    finally:
        everything.close()
    assert _sequences_by_key(replayed) == {key: list(range(20)) for key in KEYS}

    more = _produce(broker.bootstrap, unique_topic, per_key=5, start=20)
    resumed = _consumer(broker.bootstrap, unique_topic, group)
    try:
        after_commit = _drain(resumed, expected=more)
    finally:
        resumed.close()
    assert _sequences_by_key(after_commit) == {key: list(range(20, 25)) for key in KEYS}
