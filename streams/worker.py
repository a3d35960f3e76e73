"""Faust workers: Kafka topics -> projections.

Each worker consumes the aggregate topics in one consumer group, so several
workers share the partitions. Batches of events are applied through the same
projection code the in-process runner uses (projections.calls.apply_batch), in
one database transaction per batch; offsets are committed by Faust after the
batch is acknowledged. Delivery is therefore at-least-once and the
projections, being idempotent on aggregate version, make it exactly-once in
effect, including across SIGKILL.

A message that is not a decodable dialtone CloudEvent is logged and parked on
`<topic>.dlq` with headers saying why and where it came from; it never stops
the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import psycopg
from faust.types import EventT

from projections.envelope import EventEnvelope, InvalidEnvelope
from projections.registry import ProjectionGroup
from streams.heartbeat import attach_to_faust
from streams.topics import dead_letter_topic, topic_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    database_url: str
    app_id: str = "dialtone-projections"
    topic_prefix: str = ""
    partitions: int = 12
    batch_size: int = 1000
    batch_within_s: float = 0.05
    web_port: int | None = None  # Faust's own web server; None disables it


class ProjectionSink:
    """Applies envelope batches on one connection, riding out database outages."""

    def __init__(self, database_url: str, retry_s: float = 1.0) -> None:
        self.database_url = database_url
        self.retry_s = retry_s
        self._conn: psycopg.Connection[Any] | None = None

    def apply(self, groups: Sequence[ProjectionGroup], envelopes: Sequence[EventEnvelope],
              source: str) -> None:
        while True:
            try:
                for group in groups:
                    group.apply(self._connection(), envelopes, source)
                return
            except psycopg.OperationalError as error:
                # Not acknowledged, so nothing is lost: wait for the database.
                log.warning("projection database unavailable (%s); retrying", error)
                self._reset()
                time.sleep(self.retry_s)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True)
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def decode_batch(
    events: Sequence[EventT[bytes]],
) -> tuple[list[EventEnvelope], list[tuple[EventT[bytes], InvalidEnvelope]]]:
    """Split a batch into envelopes and poison messages (with why they are poison)."""
    good: list[EventEnvelope] = []
    poison: list[tuple[EventT[bytes], InvalidEnvelope]] = []
    for event in events:
        try:
            good.append(EventEnvelope.from_json(event.value))
        except InvalidEnvelope as error:
            poison.append((event, error))
    return good, poison


def source_of(events: Sequence[EventT[bytes]]) -> str:
    """Positions are recorded per topic-partition batch; a batch may span partitions."""
    parts = sorted({f"{e.message.topic}:{e.message.partition}" for e in events})
    return parts[0] if len(parts) == 1 else "kafka:" + ",".join(parts)


def create_app(config: WorkerConfig, groups: Sequence[ProjectionGroup]) -> faust.App:
    """A Faust app with one agent per aggregate topic the groups read."""
    app = faust.App(
        config.app_id,
        broker=f"kafka://{config.bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=config.partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=config.web_port is not None,
        web_port=config.web_port or 6066,
        store="memory://",
    )
    attach_to_faust(app, config.database_url)  # service_heartbeats row "worker"
    sink = ProjectionSink(config.database_url)
    for kind in sorted(set().union(*(g.kinds for g in groups))):
        _add_projection_agent(app, config, sink, kind, [g for g in groups if kind in g.kinds])
    return app


def _add_projection_agent(app: faust.App, config: WorkerConfig, sink: ProjectionSink,
                          kind: str, groups: Sequence[ProjectionGroup]) -> None:
    name = topic_for(kind, config.topic_prefix)
    topic = app.topic(name, value_serializer="raw", key_serializer="raw",
                      partitions=config.partitions)
    dead_letters = app.topic(dead_letter_topic(name), value_serializer="raw",
                             key_serializer="raw")

    async def park(event: EventT[bytes], error: InvalidEnvelope) -> None:
        message = event.message
        log.error("poison message at %s[%d]@%d parked on %s: %s", message.topic,
                  message.partition, message.offset, dead_letters.get_topic_name(), error)
        await dead_letters.send(key=message.key, value=message.value, headers={
            "dialtone-error": str(error).encode(),
            "dialtone-origin": f"{message.topic}:{message.partition}:{message.offset}".encode(),
        })

    async def project(stream: faust.StreamT[bytes]) -> None:
        # take_events is on the concrete Stream only; it keeps each message
        # (for its partition and offset), where take() keeps values.
        assert isinstance(stream, faust.Stream)
        async for events in stream.take_events(config.batch_size, within=config.batch_within_s):
            envelopes, poison = decode_batch(events)
            for event, error in poison:
                await park(event, error)
            if envelopes:
                await asyncio.to_thread(sink.apply, groups, envelopes, source_of(events))

    app.agent(topic, name=f"project-{kind}")(project)
