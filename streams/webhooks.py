"""The webhook runners: what feeds `application.webhooks.decide` and who sends.

- Embedded default (`dialtone up`): `StoreFollower`, one per event store, reads
  the notification log after the position it recorded (projection_positions,
  projection ``webhooks``) and queues deliveries in the same transaction as that
  position, so a crash resumes exactly where the last committed page ended.
- Distributed (`dialtone webhooks`): `KafkaFollower`, a kafka-python consumer
  group on the dialtone topics, queues deliveries and commits its offsets only
  after the transaction; a batch read again after a crash queues nothing twice.
- Both: `DispatcherThread` runs the async `Dispatcher` on its own event loop.

Each writes its service_heartbeats row (`/readyz`, `dialtone status`): the store
followers as ``webhooks``/``webhooks-<app>``, the Kafka follower as
``webhooks``/``kafka@<host>`` and the dispatcher as
``webhook-dispatcher``/``<host>`` (or the instance it is given), each ticked by its
own loop, so a hung loop lets its row go stale. Their Prometheus series
(application/webhook_metrics.py: deliveries queued, attempts by outcome, the
dispatcher's rounds) are served by the process that runs them: `dialtone webhooks`
on DIALTONE_METRICS_PORT, `dialtone up` on its /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from eventsourcing.application import Application
from kafka import KafkaConsumer, TopicPartition

from application import webhook_metrics as metrics
from application.follow import DATABASE_ERRORS, Backoff, Follower, NotifiedLoop, page_after
from application.heartbeats import Heartbeat, host_instance
from application.webhooks.delivery import Dispatcher
from application.webhooks.settings import WebhookSettings
from projections import positions
from projections.envelope import EventEnvelope, InvalidEnvelope, decode_each
from streams import webhooks_decide as decide
from streams.kafka_auth import KafkaAuth
from streams.relay import FATAL_KAFKA_ERRORS, KAFKA_RETRYABLE_ERRORS, ensure_topics
from streams.topics import TOPIC_PARTITIONS

log = logging.getLogger(__name__)

POSITION_NAME = "webhooks"
CONSUMER_GROUP = "dialtone-webhooks"
FOLLOWER_SERVICE = "webhooks"
DISPATCHER_SERVICE = "webhook-dispatcher"
# The Kafka follower's wait after a failed batch: 0.5 s, doubling up to 5 s (the relay's).
OUTAGE_BACKOFF = Backoff(0.5, 5.0)


class StoreFollower(NotifiedLoop):
    """Queues the deliveries of one application's stored events (embedded default)."""

    HEARTBEAT_SERVICE = FOLLOWER_SERVICE

    def __init__(self, app: Application[Any], database_url: str, *, page_size: int = 500,
                 tick_s: float = 0.5) -> None:
        channel = getattr(app.recorder, "channel_name", app.name)  # PostgreSQL's NOTIFY
        super().__init__(database_url, channel, f"webhooks-{app.name}", tick_s=tick_s)
        self.app = app
        self.page_size = page_size
        self.source = f"store:{app.name}"
        metrics.expose_webhooks()  # this process queues: it serves the webhook series

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        return self.run_once(conn) >= self.page_size

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """Queue the next page's deliveries; return how many events it held."""
        after = positions.read(conn, POSITION_NAME, self.source)
        notifications = page_after(self.app.recorder, after, self.page_size)
        if notifications:
            with conn.transaction(), conn.cursor() as cur:
                envelopes, refused = decode_each(self.app, notifications)
                for notification, error in refused:  # a newer release's: none can get it
                    log.error("webhooks: stored event %s at position %d cannot be decoded by "
                              "this release (%s); not delivered", notification.topic,
                              notification.id, error)
                queued = decide.accept(conn, envelopes)
                positions.record(cur, (POSITION_NAME,), self.source, notifications[-1].id)
            metrics.webhooks_queued(queued)  # committed, with the position
        return len(notifications)

    def catch_up(self) -> int:
        """Queue the deliveries of everything stored so far; return the events read."""
        total = 0
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while read := self.run_once(conn):
                total += read
        return total


class KafkaFollower:
    """Queues the deliveries of the events on the dialtone topics (distributed).

    Like the relay, it rides out PostgreSQL or Kafka going away: a batch whose
    transaction or offset commit fails is read again (the consumer is moved back to
    the batch's first offsets) once the back-off is over, rather than skipped by the
    next poll; accept() queues nothing twice. Kafka refusing who it is or what it may
    read (FATAL_KAFKA_ERRORS) ends run(): retrying cannot help, and the exit tells
    the supervisor."""

    def __init__(self, bootstrap: str, topics: Sequence[str], database_url: str, *,
                 group_id: str = CONSUMER_GROUP, auth: KafkaAuth | None = None,
                 poll_ms: int = 500, instance: str | None = None,
                 backoff: Backoff = OUTAGE_BACKOFF) -> None:
        self.database_url = database_url
        self.poll_ms = poll_ms
        self.heartbeat = Heartbeat(database_url, FOLLOWER_SERVICE,
                                   instance or host_instance("kafka"))
        # Started before the relay, the consumer's first metadata request would have
        # the broker create the topics with its own num.partitions (compose: 4), not
        # the relay's and worker's count.
        ensure_topics(bootstrap, topics, TOPIC_PARTITIONS, auth)
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", isolation_level="read_committed",
            **(auth or KafkaAuth()).kafka_python())
        self.consumer.subscribe(list(topics))
        # Polls (the poll itself waits up to poll_ms): no pause between batches.
        self.follower = Follower(
            "webhooks-kafka", lambda: self.run_once() > 0, tick_s=0.0, backoff=backoff,
            retry_on=(*DATABASE_ERRORS, *KAFKA_RETRYABLE_ERRORS), fatal=FATAL_KAFKA_ERRORS,
            after_step=self.heartbeat.tick, count_steps=True)
        metrics.expose_webhooks()

    @property
    def failures(self) -> int:
        """Batches (or polls) that failed and were retried, all told."""
        return self.follower.failures

    def run_once(self) -> int:
        """Poll once, queue what came, commit the offsets; return the events handled."""
        batches = self.consumer.poll(timeout_ms=self.poll_ms, max_records=1000)
        try:
            envelopes = list(_envelopes(r.value for rs in batches.values() for r in rs))
            if envelopes:
                with psycopg.connect(self.database_url) as conn:  # one transaction, committed
                    queued = decide.accept(conn, envelopes)
                metrics.webhooks_queued(queued)
            if batches:
                self.consumer.commit()  # after the transaction: at least once
        except BaseException:
            self._read_again(batches)
            raise
        return len(envelopes)

    def _read_again(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Move back to the failed batch's first offsets on the partitions still ours
        (a partition lost in a rebalance resumes, for its new owner, from the offsets
        last committed: the same place)."""
        assigned = self.consumer.assignment()
        for partition, records in batches.items():
            if records and partition in assigned:
                self.consumer.seek(partition, records[0].offset)

    def run(self) -> None:
        """Follow the topics until stop(), riding out outages (see the class)."""
        self.heartbeat.start()
        try:
            self.follower.run()
        finally:
            self.heartbeat.stop(clean=self.follower.stopping)  # an error leaves it to go stale

    def stop(self) -> None:
        """Ask run() to end after the poll in progress (from a signal handler too)."""
        self.follower.stop()

    def close(self) -> None:
        self.consumer.close()


def _envelopes(values: Iterable[bytes]) -> Iterable[EventEnvelope]:
    for value in values:
        try:
            yield EventEnvelope.from_json(value)
        except InvalidEnvelope as error:
            # Not ours to repair (the relay publishes valid events only): skip it loudly.
            log.error("webhooks skipped a message that is not a dialtone event: %s", error)


class DispatcherThread:
    """The async Dispatcher on its own thread and event loop."""

    def __init__(self, database_url: str, settings: WebhookSettings | None = None, *,
                 instance: str | None = None) -> None:
        self.heartbeat = Heartbeat(database_url, DISPATCHER_SERVICE, instance or host_instance())
        self.dispatcher = Dispatcher(database_url, settings, heartbeat=self.heartbeat)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()
        self._started.wait(10)
        self.heartbeat.start()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        try:
            await self.dispatcher.run(self._stop)
        finally:
            await self.dispatcher.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self.heartbeat.stop()


class EmbeddedWebhooks:
    """What `dialtone up` runs: a follower per event store and one dispatcher."""

    def __init__(self, apps: Sequence[Application[Any]], database_url: str,
                 settings: WebhookSettings | None = None) -> None:
        self.followers = [StoreFollower(app, database_url) for app in apps]
        self.dispatcher = DispatcherThread(database_url, settings)

    def start(self) -> None:
        for follower in self.followers:
            follower.start()
        self.dispatcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        for follower in self.followers:
            follower.stop(timeout)
        self.dispatcher.stop(timeout)
