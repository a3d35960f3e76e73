"""`dialtone webhooks` started before the relay creates the topics with the relay's
and the worker's partition count, not the broker's.

Before the fix its consumer only subscribed: its first metadata request had the
broker create the topics with its own num.partitions (4 on the test broker and
in compose), and the relay, starting later, found them made and kept them so:
a consumer group then got work on at most 4 members, not the documented 12.
"""

from __future__ import annotations

from uuid import uuid4

import pytest
from kafka import KafkaAdminClient

from dialtone.commands.webhooks import topics
from streams.topics import TOPIC_PARTITIONS
from streams.webhooks import CONSUMER_GROUP, KafkaFollower

pytestmark = pytest.mark.kafka
NEVER_CONNECTED = "postgresql://nobody@127.0.0.1:9/unused"  # the test polls Kafka only


def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        present = set(admin.list_topics()) & set(names)
        return {t["name"]: len(t["partitions"])
                for t in admin.describe_topics(sorted(present))}
    finally:
        admin.close()


def test_the_webhooks_consumer_creates_its_topics_with_the_relays_partition_count(
        kafka_bootstrap: str) -> None:
    prefix = f"t{uuid4().hex[:8]}."
    names = topics(prefix)  # what `dialtone webhooks` subscribes to
    assert _partition_counts(kafka_bootstrap, names) == {}  # a fresh prefix: no topic yet

    follower = KafkaFollower(kafka_bootstrap, names, NEVER_CONNECTED,
                             group_id=f"{prefix}{CONSUMER_GROUP}")
    try:
        follower.consumer.poll(timeout_ms=2_000)  # its first fetch of metadata
    finally:
        follower.close()

    assert TOPIC_PARTITIONS == 12
    assert _partition_counts(kafka_bootstrap, names) == dict.fromkeys(names, TOPIC_PARTITIONS)
