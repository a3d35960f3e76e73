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

Faults (docs/reliability.md): a page that Kafka does not take within seconds
(broker gone, batches expired, a commit unanswered) is never committed with a
hole: every record's delivery is checked before the commit, the producer is
discarded, and a new one's init_transactions() fences and aborts the open
transaction; the relay retries from the topics' committed tail with back-off
until the broker is back. A lost PostgreSQL connection is waited out the same
way. Only Kafka refusing the relay's credentials or rights stops it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.application import Application
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
)

from application import metrics
from application.follow import DATABASE_ERRORS, Backoff, Follower, page_after, pages
from application.heartbeats import Heartbeat
from application.tracing import publish_span, trace_headers
from projections.envelope import (
    CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    EventEnvelope,
    decode,
)
from streams.kafka_auth import KafkaAuth
from streams.topic_tail import last_committed_position
from streams.topics import TOPIC_PARTITIONS, topic_for

log = logging.getLogger(__name__)

# CloudEvents Kafka binding, structured mode: the value is the whole event.
_HEADERS = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]

# Bounds on every wait of a transaction, so that a page Kafka cannot take fails
# within seconds (kafka-python's defaults: 120 s delivery, 60 s blocking, and
# no bound at all on commit_transaction()).
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 8_000  # >= request timeout + linger, as kafka-python requires
MAX_BLOCK_MS = 5_000  # send() waiting for metadata; init_transactions()
END_TRANSACTION_S = 10.0  # EndTxn (commit or abort) answered by the coordinator
_PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all", "linger_ms": 5, "batch_size": 256 * 1024,
    "request_timeout_ms": REQUEST_TIMEOUT_MS, "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
    "max_block_ms": MAX_BLOCK_MS,
    # Reconnect to a restarted broker within a second, not kafka-python's 30 s.
    "reconnect_backoff_max_ms": 1_000,
}
# Kafka refusing who the relay is or what it may do: retrying cannot help.
FATAL_KAFKA_ERRORS = (SaslAuthenticationFailedError, AuthorizationError)
# The database away (DATABASE_ERRORS, from application.follow: eventsourcing wraps
# psycopg's errors; the relay's own connection raises psycopg's).
# Kafka failing a page or a reconnection; TimeoutError: the tail not read in time.
KAFKA_RETRYABLE_ERRORS = (KafkaError, TimeoutError)


@dataclass(frozen=True)
class RelayConfig:
    bootstrap: str
    kinds: tuple[str, ...] = ("call",)
    topic_prefix: str = ""
    partitions: int = TOPIC_PARTITIONS
    page_size: int = 2000
    idle_wait: float = 0.05
    auth: KafkaAuth = field(default_factory=KafkaAuth)
    retry_first: float = 0.5  # back-off after a failed page: doubles up to retry_most
    retry_most: float = 5.0
    # A broker whose transaction coordinator is still starting (init_transactions
    # times out) is waited for this long at start; refusals (FATAL_KAFKA_ERRORS) are not.
    start_within_s: float = 60.0


class Relay:
    def __init__(self, app: Application[Any], database_url: str, config: RelayConfig) -> None:
        self.app = app
        self.database_url = database_url
        self.config = config
        self.topics = [topic_for(kind, config.topic_prefix) for kind in config.kinds]
        # Polls (idle_wait) rather than LISTENs: a page a tick, as it always did.
        self.follower = Follower(
            f"relay-{app.name}", self._step, tick_s=config.idle_wait,
            backoff=Backoff(config.retry_first, config.retry_most),
            retry_on=(*DATABASE_ERRORS, *KAFKA_RETRYABLE_ERRORS), fatal=FATAL_KAFKA_ERRORS,
            on_failure=self._after_failure)
        self._producer: KafkaProducer | None = None
        self._db: psycopg.Connection[Any] | None = None
        self.position = 0
        self._recorded = 0  # the position last written to relay_positions
        self.producers_created = 0  # 1 at start; each recovery from a failed page adds one
        # One active relay per application (the transactional id fences others).
        self.heartbeat = Heartbeat(database_url, "relay", app.name,
                                   detail=lambda: {"position": self.position})
        metrics.watch_relay(app.name, lambda: self.position, app.recorder.max_notification_id)

    def open(self) -> None:
        """Topics, producer and resume position. A broker that cannot be reached or
        refuses the relay stops it (the supervisor sees an exit); one that answers
        but whose transaction coordinator is still starting is waited for."""
        ensure_topics(self.config.bootstrap, self.topics, self.config.partitions,
                      self.config.auth)
        self.position = self._recorded = self._stored_position()
        self._producer_once_coordinated()
        metrics.relay_published(self.app.name, 0, self.position)

    def _producer_once_coordinated(self) -> None:
        """init_transactions() retried for ``start_within_s``: a freshly started broker
        creates its transaction-state topic (50 partitions) on the first transactional
        client, which takes longer than MAX_BLOCK_MS on a loaded machine."""
        deadline = time.monotonic() + self.config.start_within_s
        backoff = Backoff(self.config.retry_first, self.config.retry_most)
        for attempt in itertools.count(1):
            try:
                self._ready_producer()
                return
            except FATAL_KAFKA_ERRORS:
                raise
            except KAFKA_RETRYABLE_ERRORS as error:
                wait = backoff.delay(attempt)
                if time.monotonic() + wait > deadline:
                    raise
                self.heartbeat.tick()  # waiting for the broker is the loop turning, not a hang
                log.warning("relay %s: Kafka's transaction coordinator not ready (%s: %s); "
                            "retrying in %.1f s", self.app.name, type(error).__name__, error, wait)
                if self.follower.stop_event.wait(wait):
                    return  # stopped while waiting: a clean stop, not a failure

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        self._discard_producer(timeout=10)

    @property
    def failures(self) -> int:
        """Pages (or reconnections) that failed, Kafka's or the database's."""
        return self.follower.failures

    def stop(self) -> None:
        self.follower.stop()

    def run(self) -> None:
        """Relay until stop() is called, riding out Kafka and PostgreSQL outages."""
        self.heartbeat.start()
        try:
            self.open()
            self.follower.run()
        finally:
            self.close()
            self.heartbeat.stop(clean=self.follower.stopping)  # an error leaves it to go stale

    def _step(self) -> bool:
        self.heartbeat.tick()  # waiting out an outage is the loop turning, not a hang
        return self.relay_page() > 0

    def relay_page(self) -> int:
        """Publish the next page in one transaction; return how many events it held.

        A failure leaves nothing half done: the page is either committed whole
        (and the position advanced) or its transaction is abandoned to the next
        producer's fencing, and the next call starts again from the topics' tail.
        """
        producer = self._ready_producer()  # may move the position (the topics' tail)
        if self._recorded != self.position:
            self._record_position()  # published before the database went away
        notifications = page_after(self.app.recorder, self.position, self.config.page_size)
        if not notifications:
            return 0
        envelopes = decode(self.app, notifications)
        try:
            with publish_span(self.app.name, len(notifications), notifications[-1].id):
                publish_page(producer, envelopes, self.config.topic_prefix)
        except KAFKA_RETRYABLE_ERRORS:
            self._discard_producer()
            raise
        self.position = notifications[-1].id
        metrics.relay_published(self.app.name, len(notifications), self.position)
        self._record_position()
        return len(notifications)

    def _ready_producer(self) -> KafkaProducer:
        """The producer, made anew after a failure: init_transactions() fences the
        discarded one and aborts its open transaction (or lets a commit the broker
        already took complete), so the committed tail read next is final."""
        if self._producer is not None:
            return self._producer
        producer = KafkaProducer(
            bootstrap_servers=self.config.bootstrap, **self.config.auth.kafka_python(),
            transactional_id=f"{self.config.topic_prefix}dialtone-relay-{self.app.name}",
            **_PRODUCER_SETTINGS)
        try:
            producer.init_transactions()
            tail = last_committed_position(self.config.bootstrap, self.topics,
                                           auth=self.config.auth)
        except BaseException:
            _close_quietly(producer, 0)
            raise
        self._producer = producer
        self.producers_created += 1
        # Never below what this incarnation saw committed (a tail window of only
        # aborted records reads as 0).
        self.position = max(self.position, tail)
        log.info("relay %s resumes after position %d", self.app.name, self.position)
        return producer

    def _discard_producer(self, timeout: float = 1.0) -> None:
        if self._producer is not None:
            _close_quietly(self._producer, timeout)
            self._producer = None

    def _after_failure(self, error: BaseException, delay: float) -> None:
        """Log what failed, drop what may be broken (the follower then waits ``delay``)."""
        if isinstance(error, DATABASE_ERRORS):
            if self._db is not None:
                self._db.close()
            log.warning("relay %s: PostgreSQL unavailable (%s: %s); retrying in %.1f s "
                        "(Kafka is fine; nothing is lost: the store is the outbox)",
                        self.app.name, type(error).__name__, error, delay)
        else:
            log.warning("relay %s: Kafka at %s did not take the page after position %d "
                        "(%s: %s); its transaction is abandoned, retrying with a new "
                        "producer in %.1f s", self.app.name, self.config.bootstrap,
                        self.position, type(error).__name__, error, delay)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
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
        self._recorded = self.position


def _close_quietly(producer: KafkaProducer, timeout: float) -> None:
    """Close a producer that may be broken (its flush may time out or fail)."""
    try:
        producer.close(timeout=timeout)
    except KafkaError as error:  # its flush timed out: records still queued
        log.debug("closing a failed producer: %s: %s", type(error).__name__, error)
        # close() stops before it stops the sender thread; do what it would have.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()


def publish_page(producer: KafkaProducer, envelopes: Iterable[EventEnvelope],
                 topic_prefix: str) -> None:
    """Send one page inside one transaction; commit only if every record was delivered.

    kafka-python fails a batch that expired (broker away past the delivery
    timeout) without failing the transaction, so a plain commit_transaction()
    would commit the page with a hole in it: each record's result is checked
    first. Every wait is bounded (see the *_MS settings); on any error the
    caller discards the producer, whose open transaction is then aborted.
    """
    producer.begin_transaction()
    headers = _HEADERS + trace_headers()  # the page's span, when traces are recorded
    futures = [producer.send(topic_for(envelope.kind, topic_prefix),
                             key=str(envelope.subject).encode(), value=envelope.to_json(),
                             headers=headers)
               for envelope in envelopes]
    producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000 + 1)
    for future in futures:
        future.get(timeout=0)  # raises the batch's error
    end_transaction(producer, commit=True)


def end_transaction(producer: KafkaProducer, *, commit: bool,
                    timeout: float = END_TRANSACTION_S) -> None:
    """commit_transaction() / abort_transaction() with a bound on the wait.

    kafka-python 3.0's own methods wait for the coordinator's answer for ever
    (a broker killed after the records were delivered blocks the relay until it
    is back); this is their body with a timeout on the wait.
    """
    manager = producer._transaction_manager  # private: see the docstring
    result = manager.begin_commit() if commit else manager.begin_abort()
    producer._sender.wakeup()
    if not result.wait(timeout_ms=timeout * 1000):
        verb = "commit" if commit else "abort"
        raise KafkaTimeoutError(f"the transaction's {verb} was not answered in {timeout:.0f} s")


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
        **_PRODUCER_SETTINGS)
    try:
        producer.init_transactions()
        count = 0
        for page in pages(app.recorder, first - 1, page_size=config.page_size, until=last):
            publish_page(producer, decode(app, page), config.topic_prefix)
            count += len(page)
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
