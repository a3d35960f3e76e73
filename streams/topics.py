"""Kafka topic names: one topic per aggregate kind, versioned with the schema."""

from __future__ import annotations

# Kinds whose plural is not kind + "s".
_PLURALS = {"ivrmenu": "ivr-menus", "dialplan": "dialplans"}
DEAD_LETTER_SUFFIX = ".dlq"
# Partitions of every dialtone topic, as whichever of the relay, the worker and
# `dialtone webhooks` starts first creates it (never the broker's num.partitions).
# A consumer group gets work on at most this many members (docs/operations.md).
# High from the start: partitions can be added but not taken away, and adding them
# sends keys to other partitions, so an aggregate's events would no longer all be
# in one partition, in order.
TOPIC_PARTITIONS = 12


def topic_for(kind: str, prefix: str = "", schema_version: int = 1) -> str:
    """`call` -> `dialtone.calls.v1` (key = aggregate id, so per-aggregate order holds).

    `prefix` lets several deployments (or test runs) share one cluster.
    """
    return f"{prefix}dialtone.{_PLURALS.get(kind, kind + 's')}.v{schema_version}"


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX
