"""The tail of the published topics: the highest store position committed to them.

`dialtone restore` compares it with the restored store's position: a backup older
than what integrators have already read must not be relayed onto the same topics
(docs/operations.md). Read committed only, a bounded window from each partition's end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition

from projections.envelope import EventEnvelope, InvalidEnvelope
from streams.kafka_auth import KafkaAuth

_TAIL_WINDOW = 500  # offsets read back per partition to find the last committed event


def last_committed_position(bootstrap: str, topics: Iterable[str], timeout: float = 10.0,
                            auth: KafkaAuth | None = None) -> int:
    """The highest store position committed to any partition of the topics (0 if none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None,
                             **(auth or KafkaAuth()).kafka_python())
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return 0
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - _TAIL_WINDOW))
        return _max_sequence_until(consumer, ends, timeout)
    finally:
        consumer.close()


def _max_sequence_until(consumer: KafkaConsumer, ends: dict[TopicPartition, int],
                        timeout: float) -> int:
    highest = 0
    deadline = time.monotonic() + timeout
    pending = {tp for tp, end in ends.items() if end > 0}
    while pending and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                highest = max(highest, _position_of(record.value))
        pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    if pending:
        raise TimeoutError(f"could not read the tail of {sorted(map(str, pending))}")
    return highest


def _position_of(value: bytes) -> int:
    try:
        return EventEnvelope.from_json(value).position
    except InvalidEnvelope:
        return 0  # not ours (a poison message someone produced): no position
