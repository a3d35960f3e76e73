"""Faust workers: Kafka topics -> projections.

Each worker consumes the aggregate topics in one consumer group, so several
workers share the partitions. One agent per topic; its batches are
applied through the same projection code the in-process runner uses (a
ProjectionGroup's apply), one database transaction per batch that holds the
rows and the positions of every group together. Delivery is at-least-once and
the projections, being idempotent on aggregate version, make it exactly-once in
effect, including across SIGKILL.

What is never allowed: Kafka offsets committed past events whose rows are not
committed (issue 16: a connection shared across the agents' threads broke its
transactions, and Faust committed the offsets anyway). Hence:

- the agent has its own ProjectionSink, hence its own connection, used by one
  thread at a time (it awaits each batch before taking the next);
- batches are taken with ``noack_take``, which never acknowledges by itself
  (``take_events`` acks in a ``finally``, so an exception or a cancellation
  there would acknowledge the batch); the agent acknowledges a batch's events
  only after the sink has committed them, and Faust commits an offset only up
  to the first unacknowledged message of a partition;
- the sink retries any failure until it succeeds or the worker stops, and an
  event that cannot be applied (a poison event: see projections.positions)
  is parked in projection_dead_letters, so it cannot stop the stream either.

A message that is not a decodable dialtone CloudEvent is logged and parked on
`<topic>.dlq` with headers saying why and where it came from; it never stops
the stream.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import faust
import psycopg
from faust.types import EventT

from application import log_context, metrics
from application.tracing import consume_span, projection_span
from projections import touched
from projections.envelope import EventEnvelope, InvalidEnvelope
from projections.positions import apply_or_park
from projections.registry import ProjectionGroup
from streams.heartbeat import attach_to_faust
from streams.kafka_auth import KafkaAuth
from streams.refresher import attach_to_faust as attach_refresher
from streams.relay import ensure_topics
from streams.topics import TOPIC_PARTITIONS, dead_letter_topic, topic_for

log = logging.getLogger(__name__)

APPLICATION_NAME = "dialtone-worker"  # how operators find the worker's sessions


@dataclass(frozen=True)
class ProjectionWorkerConfig:
    bootstrap: str
    database_url: str
    app_id: str = "dialtone-projections"
    topic_prefix: str = ""
    partitions: int = TOPIC_PARTITIONS
    batch_size: int = 1000
    batch_within_s: float = 0.01  # bench.live --kafka: SSE p99 491-584 ms against 640-713 at 0.05
    web_port: int | None = None  # Faust's own web server; None disables it
    retry_s: float = 0.5  # first wait after a failed batch; doubles up to max_retry_s
    max_retry_s: float = 10.0
    auth: KafkaAuth = field(default_factory=KafkaAuth)
    # Faust keeps table state under a data directory even with the memory store;
    # its default is "<app id>-data" in the working directory, which litters
    # wherever the worker was started. None: a directory under the system's temp.
    data_dir: str | None = None

    def faust_data_dir(self) -> str:
        """The directory, with its parents made: Faust makes only the last level, so a
        worker started before anything made ``DIALTONE_DATA_DIR`` failed at start."""
        path = (Path(self.data_dir) if self.data_dir is not None
                else Path(tempfile.gettempdir()) / "dialtone-faust" / f"{self.app_id}-data")
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)


@dataclass(frozen=True)
class Piece:
    """The part of a batch that came from one topic: its events, the groups that read
    its kind, and its source (``source_of``: as projection_positions names it)."""

    topic: str
    groups: Sequence[ProjectionGroup]
    envelopes: Sequence[EventEnvelope]
    source: str


class ProjectionSink:
    """Applies one agent's batches on its own connection until each is committed.

    Never shared: one sink per agent, called by one thread at a time. `apply`
    returns True once the batch is committed: every piece to every group that
    reads it, rows and positions, in one transaction (one commit, so one
    `NOTIFY dialtone_projections` per batch, as the in-process runner does per
    page; each group's apply is a savepoint in it, so a poison event still parks
    alone). A batch committed already and applied again changes nothing. False
    if the worker stopped first.
    """

    def __init__(self, database_url: str, retry_s: float = 0.5, max_retry_s: float = 10.0,
                 name: str = "projections") -> None:
        self.database_url = database_url
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.name = name
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._busy = threading.Lock()

    def apply(self, pieces: Sequence[Piece]) -> bool:
        with self._busy:
            wait = self.retry_s
            while not self._stop.is_set():
                try:
                    self.apply_once(self._connection(), pieces)
                    return True
                except Exception as error:  # whatever it is: retry, never acknowledge
                    # Not acknowledged, so nothing is lost: a fresh connection,
                    # a pause, and the whole batch again.
                    log.warning("%s: batch of %d from %s failed (%s: %s); retrying in %.1f s",
                                self.name, sum(len(p.envelopes) for p in pieces),
                                ", ".join(p.source for p in pieces), type(error).__name__,
                                _first_line(error), wait)
                    self._reset()
                    self._stop.wait(wait)
                    wait = min(wait * 2, self.max_retry_s)
            self._reset()
            return False

    @staticmethod
    def apply_once(conn: psycopg.Connection[Any], pieces: Sequence[Piece]) -> None:
        """One attempt: every piece to its groups, in one transaction on ``conn``."""
        # A transaction per group and topic committed the call and its queue's rows
        # apart, each commit waking the live feed (api/live/notify.py) to read a view
        # only partly moved (issue 10); a failure rolls the whole batch back.
        with conn.transaction():
            for piece in pieces:
                # What it touched, for the live feed (sent at the commit; api/live/stream.py).
                touched.notify_batch(conn, piece.groups, piece.envelopes, piece.source)
                for group in piece.groups:
                    with projection_span(group.names[0], len(piece.envelopes)):
                        apply_or_park(conn, group, piece.envelopes, piece.source)

    def stop(self) -> None:
        """Make a running `apply` give up (unacknowledged) and close the connection."""
        self._stop.set()
        if self._busy.acquire(blocking=False):
            try:
                self._reset()
            finally:
                self._busy.release()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._reset()
            self._conn = psycopg.connect(self.database_url, autocommit=True,
                                         application_name=APPLICATION_NAME)
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def _first_line(error: BaseException) -> str:
    # PostgreSQL's DETAIL and CONTEXT lines may quote event data.
    return str(error).splitlines()[0] if str(error) else ""


def decode_batch(
    events: Sequence[EventT[bytes]],
) -> tuple[list[tuple[EventT[bytes], EventEnvelope]],
           list[tuple[EventT[bytes], InvalidEnvelope]]]:
    """Split a batch into its events with their envelopes, and poison messages (with
    why they are poison)."""
    good: list[tuple[EventT[bytes], EventEnvelope]] = []
    poison: list[tuple[EventT[bytes], InvalidEnvelope]] = []
    for event in events:
        try:
            good.append((event, EventEnvelope.from_json(event.value)))
        except InvalidEnvelope as error:
            poison.append((event, error))
    return good, poison


def source_of(good: Sequence[tuple[EventT[bytes], EventEnvelope]]) -> str:
    """The batch's projection_positions source: the topic-partition of its record with
    the highest store position (a batch may span partitions).

    Every commit must move its source's row: the live feed wakes on their sum
    (api/live/stream.py). This one does: the row's value is a record of that
    partition, and a later batch named after the same partition holds a later
    record of it. One row per topic would not (tried 2026-12-04 and reverted): a
    batch may hold only records of other partitions below the last batch's highest
    position. Until 2026-12-04 the set of the batch's partitions named it, which
    moves too but made a row for every set of partitions ever batched together (45
    sources after 30 s of bench.live --kafka), all read on each pass of the live
    feed; now at most one per partition."""
    event, _ = max(good, key=lambda pair: pair[1].position)
    return f"{event.message.topic}:{event.message.partition}"


def _kinds(groups: Sequence[ProjectionGroup]) -> list[str]:
    """The aggregate kinds the groups read, each once: a topic and an agent each."""
    return sorted(set().union(*(g.kinds for g in groups)))


def ensure_source_topics(config: ProjectionWorkerConfig,
                         groups: Sequence[ProjectionGroup]) -> None:
    """Create the topics the groups read that do not exist yet (as the relay does).
    Faust leaves a missing topic out of the group's assignment
    ("Ignoring missing topic") until the consumer next refreshes its metadata,
    minutes later: a worker started before the relay's first run read no calls for
    that long (seen in CI, where the two start together)."""
    topics = [topic_for(kind, config.topic_prefix) for kind in _kinds(groups)]
    ensure_topics(config.bootstrap, topics, config.partitions, config.auth)


def create_app(config: ProjectionWorkerConfig, groups: Sequence[ProjectionGroup]) -> faust.App:
    """A Faust app with one agent per aggregate topic the groups read."""
    app = faust.App(
        config.app_id,
        broker=f"kafka://{config.bootstrap}",
        broker_credentials=config.auth.faust_credentials(),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=config.partitions,
        consumer_auto_offset_reset="earliest",
        web_enabled=config.web_port is not None,
        web_port=config.web_port or 6066,
        store="memory://",
        datadir=config.faust_data_dir(),
    )
    attach_to_faust(app, config.database_url)  # service_heartbeats row "worker"
    attach_refresher(app, config.database_url, groups)  # the interval buckets' refresher
    for kind in _kinds(groups):
        _add_projection_agent(app, config, groups, kind)
    return app


def _add_projection_agent(app: faust.App, config: ProjectionWorkerConfig,
                          groups: Sequence[ProjectionGroup], kind: str) -> None:
    """The agent of one kind's topic: each batch one transaction for every group
    that reads the kind.

    One agent over every topic (tried for issue 10, so that a call and its queue's
    events would reach the projections in one commit) put every kind's batches on
    one thread and one connection, and fell behind at 96 commits/s
    (`bench.live --kafka`; bench/README.md, pipeline.py). An agent per topic
    applies the kinds' batches side by side."""
    name = topic_for(kind, config.topic_prefix)
    readers = [g for g in groups if kind in g.kinds]
    topic = app.topic(name, value_serializer="raw", key_serializer="raw",
                      partitions=config.partitions)
    dead_letters = app.topic(dead_letter_topic(name), value_serializer="raw",
                             key_serializer="raw")

    async def park(event: EventT[bytes], error: InvalidEnvelope) -> None:
        message = event.message
        log.error("poison message at %s[%d]@%d parked on %s: %s", message.topic,
                  message.partition, message.offset, dead_letters.get_topic_name(), error)
        metrics.WORKER_POISON.labels(kind=kind).inc()
        sent = await dead_letters.send(key=message.key, value=message.value, headers={
            "dialtone-error": str(error).encode(),
            "dialtone-origin": f"{message.topic}:{message.partition}:{message.offset}".encode(),
        })
        await sent  # on the broker before the original is acknowledged

    async def project(stream: faust.StreamT[bytes]) -> None:
        # noack_take is on the concrete Stream only; it yields the events (for
        # their partition and offset) and, unlike take_events, never acks them.
        assert isinstance(stream, faust.Stream)
        sink = ProjectionSink(config.database_url, config.retry_s, config.max_retry_s,
                              name=f"project-{kind}")
        try:
            async for taken in stream.noack_take(config.batch_size,
                                                 within=config.batch_within_s):
                events = cast(Sequence[EventT[bytes]], taken)
                good, poison = decode_batch(events)
                envelopes = [envelope for _, envelope in good]
                for event, error in poison:
                    await park(event, error)
                started = time.perf_counter()
                last = max((e.position for e in envelopes), default=None)
                # to_thread copies the context: the group spans are this span's children.
                with consume_span(kind, (e.message.headers for e in events), len(events)), \
                        log_context.bound(position=last):  # on the batch's log lines
                    if envelopes and not await asyncio.to_thread(
                            sink.apply, [Piece(name, readers, envelopes, source_of(good))]):
                        return  # stopping: this batch stays unacknowledged
                if envelopes:
                    metrics.worker_batch(kind, len(envelopes), started)
                for event in events:
                    await stream.ack(event)
        finally:
            sink.stop()

    app.agent(topic, name=f"project-{kind}")(project)
