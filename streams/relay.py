"""The relay: the event store's notification log -> Kafka, exactly once.

The event store is the outbox. Each page of notifications is published inside
one Kafka transaction (transactional, hence idempotent, producer). Where to
resume is derived from what Kafka has *committed* (the highest `sequence` in
the tail of every partition), so a relay killed at any instant neither skips
nor repeats an event: an unfinished transaction is aborted by the next
incarnation's init_transactions(), and a committed one is never re-sent even if
the relay died before writing its position to PostgreSQL. That position
(relay_positions) is written after each commit, for operators (lag) and as a
floor when topics are new.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.application import Application
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from application import metrics
from application.heartbeats import Heartbeat
from projections.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, EventEnvelope, InvalidEnvelope
from streams.envelopes import decode
from streams.kafka_auth import KafkaAuth
from streams.topics import topic_for

log = logging.getLogger(__name__)

_TAIL_WINDOW = 500  # offsets read back per partition to find the last committed event
# CloudEvents Kafka binding, structured mode: the value is the whole event.
_HEADERS = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]


@dataclass(frozen=True)
class RelayConfig:
    bootstrap: str
    kinds: tuple[str, ...] = ("call",)
    topic_prefix: str = ""
    partitions: int = 12
    page_size: int = 2000
    idle_wait: float = 0.05
    auth: KafkaAuth = field(default_factory=KafkaAuth)


class Relay:
    def __init__(self, app: Application[Any], database_url: str, config: RelayConfig) -> None:
        self.app = app
        self.database_url = database_url
        self.config = config
        self.topics = [topic_for(kind, config.topic_prefix) for kind in config.kinds]
        self._stop = threading.Event()
        self._producer: KafkaProducer | None = None
        self._db: psycopg.Connection[Any] | None = None
        self.position = 0
        # One active relay per application (the transactional id fences others).
        self.heartbeat = Heartbeat(database_url, "relay", app.name,
                                   detail=lambda: {"position": self.position})
        metrics.watch_relay(app.name, lambda: self.position, app.recorder.max_notification_id)

    def open(self) -> None:
        ensure_topics(self.config.bootstrap, self.topics, self.config.partitions,
                      self.config.auth)
        self._producer = KafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            **self.config.auth.kafka_python(),
            transactional_id=f"{self.config.topic_prefix}dialtone-relay-{self.app.name}",
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
        )
        # Fences any earlier incarnation and aborts its unfinished transaction.
        self._producer.init_transactions()
        self.position = max(self._stored_position(), last_committed_position(
            self.config.bootstrap, self.topics, auth=self.config.auth))
        log.info("relay %s resumes after position %d", self.app.name, self.position)
        metrics.relay_published(self.app.name, 0, self.position)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Relay until stop() is called."""
        self.heartbeat.start()
        try:
            self.open()
            while not self._stop.is_set():
                self.heartbeat.tick()
                if not self.relay_page():
                    self._stop.wait(self.config.idle_wait)
        finally:
            self.close()
            self.heartbeat.stop(clean=self._stop.is_set())  # an error leaves it to go stale

    def relay_page(self) -> int:
        """Publish the next page in one transaction; return how many events it held."""
        notifications = self.app.recorder.select_notifications(
            start=self.position + 1, limit=self.config.page_size
        )
        if not notifications:
            return 0
        envelopes = decode(self.app, notifications)
        self._publish(envelopes)
        self.position = notifications[-1].id
        metrics.relay_published(self.app.name, len(notifications), self.position)
        self._record_position()
        return len(notifications)

    def _publish(self, envelopes: Iterable[EventEnvelope]) -> None:
        assert self._producer is not None, "open() first"
        publish_page(self._producer, envelopes, self.config.topic_prefix)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.database_url, autocommit=True)
        return self._db

    def _stored_position(self) -> int:
        row = self._connection().execute(
            "SELECT position FROM relay_positions WHERE application = %s", (self.app.name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _record_position(self) -> None:
        self._connection().execute(
            "INSERT INTO relay_positions (application, position) VALUES (%s, %s) "
            "ON CONFLICT (application) DO UPDATE SET position = EXCLUDED.position, "
            "updated_at = now()",
            (self.app.name, self.position),
        )


def publish_page(producer: KafkaProducer, envelopes: Iterable[EventEnvelope],
                 topic_prefix: str) -> None:
    """Send one page inside one transaction."""
    producer.begin_transaction()
    for envelope in envelopes:
        producer.send(topic_for(envelope.kind, topic_prefix),
                      key=str(envelope.subject).encode(), value=envelope.to_json(),
                      headers=_HEADERS)
    producer.commit_transaction()  # flushes; returns once the broker acknowledged


def republish(app: Application[Any], config: RelayConfig, first: int, last: int) -> int:
    """Publish positions ``first``..``last`` of the store again (re-seeding lost topics).

    Same envelopes as the relay (same CloudEvents ids and sequences), so
    consumers drop any copy they already had. Its own transactional id: the
    live relay is not fenced, and relay_positions is left alone. Returns the
    number of events published.
    """
    ensure_topics(config.bootstrap, [topic_for(k, config.topic_prefix) for k in config.kinds],
                  config.partitions, config.auth)
    producer = KafkaProducer(
        bootstrap_servers=config.bootstrap, **config.auth.kafka_python(),
        transactional_id=f"{config.topic_prefix}dialtone-republish-{app.name}",
        acks="all", linger_ms=5, batch_size=256 * 1024)
    try:
        producer.init_transactions()
        count, position = 0, first - 1
        while position < last:
            page = app.recorder.select_notifications(start=position + 1, stop=last,
                                                     limit=config.page_size)
            if not page:
                break
            publish_page(producer, decode(app, page), config.topic_prefix)
            count += len(page)
            position = page[-1].id
        return count
    finally:
        producer.close(timeout=10)


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int,
                  auth: KafkaAuth | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **(auth or KafkaAuth()).kafka_python())
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            # Another relay or worker may create them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


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
