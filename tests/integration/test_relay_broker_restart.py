"""The relay rides out a Kafka broker killed and restarted mid-transaction.

Before the fix, a page in flight when the broker died either stayed blocked
until kafka-python's 120 s delivery timeout or was committed without its
expired batches (kafka-python fails an expired batch without failing the
transaction): events missing from the topic for good. Now the page fails
within seconds, the producer is discarded, a new one fences and aborts the
open transaction, and the relay resumes from the topics' committed tail.

Both tests kill the same broker (``killable_kafka_broker``: one JVM start for
the module), each on topics of its own prefix.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from application.calls import CallService
from devtools.kafka import KafkaBroker
from devtools.simulate import lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections.envelope import decode
from streams.relay import Relay, RelayConfig, ensure_topics, publish_page
from streams.topics import topic_for
from tests.fixtures.processes import wait_for
from tests.fixtures.reconcile import StoredEvent, compare_topic, topic_records

pytestmark = pytest.mark.kafka


@dataclass
class Running:
    """A relay on a thread of its own, and a writer storing calls until stopped."""

    relay: Relay
    service: CallService
    stop_writing: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._relay, daemon=True),
                        threading.Thread(target=self._write, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _relay(self) -> None:
        try:
            self.relay.run()
        except BaseException as error:
            self.errors.append(error)

    def _write(self) -> None:
        n = 0
        while not self.stop_writing.wait(0.05):  # a steady trickle: pages keep flowing
            lifecycles(self.service, 1, f"w{n}", batch=1)
            n += 1

    def finish(self) -> None:
        self.stop_writing.set()
        self.relay.stop()
        for thread in self.threads:
            thread.join(30)


@pytest.fixture
def running(database_url: str, killable_kafka_broker: KafkaBroker) -> Iterator[Running]:
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    config = RelayConfig(bootstrap=killable_kafka_broker.bootstrap,
                         topic_prefix=f"t{uuid.uuid4().hex[:8]}.", partitions=4,
                         page_size=20, retry_most=1.0)
    state = Running(Relay(service, database_url, config), service)
    state.start()
    try:
        yield state
    finally:
        state.finish()
        service.close()


def _stored(service: CallService) -> list[StoredEvent]:
    page = service.recorder.select_notifications(start=1, limit=1_000_000)
    return [StoredEvent(e.id, e.kind, e.subject, e.version) for e in decode(service, page)]


def test_relay_rides_out_a_broker_restart_and_publishes_every_event_once(
    running: Running, killable_kafka_broker: KafkaBroker,
) -> None:
    relay = running.relay
    wait_for(lambda: relay.position > 0, 60, "the relay to publish")
    assert relay.producers_created == 1

    killable_kafka_broker.kill()  # the writer goes on: a page is in flight or next
    # The broker stays away until the relay has seen a page (or a reconnection)
    # fail: the recovery path, not the client's own retries, is what is tested.
    wait_for(lambda: relay.failures >= 1, 60, "the relay to see the broker gone")
    assert running.errors == []
    killable_kafka_broker.start()

    published = relay.position
    wait_for(lambda: relay.position > published, 60, "the relay to publish again")
    running.stop_writing.set()
    running.threads[1].join(30)
    head = running.service.recorder.max_notification_id() or 0
    wait_for(lambda: relay.position >= head, 60, "the relay to catch up")

    assert running.errors == [], "the relay stopped on the outage"
    assert running.threads[0].is_alive()
    assert relay.producers_created >= 2  # the failed page's producer was replaced
    report = compare_topic(_stored(running.service),
                           topic_records(killable_kafka_broker.bootstrap,
                                         topic_for("call", relay.config.topic_prefix)))
    assert report.lost == []
    assert report.doubled == 0
    assert report.foreign == []
    assert report.out_of_order == 0


def test_a_page_whose_records_expired_is_not_committed(
    database_url: str, killable_kafka_broker: KafkaBroker,
) -> None:
    """The root cause: kafka-python fails an expired batch but commits the
    transaction around it. publish_page must raise instead, leaving nothing of
    the page on the topic (the relay then retries it whole)."""
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    prefix = f"t{uuid.uuid4().hex[:8]}."
    topic = topic_for("call", prefix)
    ensure_topics(killable_kafka_broker.bootstrap, [topic], 4)
    producer = KafkaProducer(bootstrap_servers=killable_kafka_broker.bootstrap,
                             transactional_id=f"{prefix}expiry", acks="all",
                             request_timeout_ms=2_000, delivery_timeout_ms=3_000,
                             max_block_ms=5_000, reconnect_backoff_max_ms=1_000)
    try:
        producer.init_transactions()
        lifecycles(service, 2, "before")
        publish_page(producer, decode(service, service.recorder.select_notifications(
            start=1, limit=1_000)), prefix)  # metadata known: send() will not block
        first_page = len(topic_records(killable_kafka_broker.bootstrap, topic))
        lifecycles(service, 2, "during")
        page = service.recorder.select_notifications(start=first_page + 1, limit=1_000)
        outcome: list[BaseException | None] = []

        def publish() -> None:
            try:
                publish_page(producer, decode(service, page), prefix)
                outcome.append(None)
            except KafkaError as error:
                outcome.append(error)

        killable_kafka_broker.kill()
        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        time.sleep(5)  # past the 3 s delivery timeout: the page's batches expire
        killable_kafka_broker.start()
        thread.join(60)
        assert outcome, "publish_page still blocked a minute after the broker came back"
        assert isinstance(outcome[0], KafkaError), "a page with expired records was committed"
    finally:
        with contextlib.suppress(KafkaError):
            producer.close(timeout=1)
        service.close()
    on_topic = topic_records(killable_kafka_broker.bootstrap, topic)
    assert len(on_topic) == first_page  # nothing of the failed page


class CoordinatorStarting(Relay):
    """The real relay on the real broker, whose first ``slow`` producers time out in
    init_transactions() as a freshly started broker's transaction coordinator does
    on a loaded machine (seen in CI: 'Timeout expired while initializing
    transactional state in 5000 ms')."""

    slow = 3

    def _ready_producer(self) -> KafkaProducer:
        if self._producer is None and self.slow > 0:
            self.slow -= 1
            raise KafkaTimeoutError("Timeout expired while initializing transactional state")
        return super()._ready_producer()


def test_a_relay_waits_for_a_transaction_coordinator_still_starting_and_publishes(
    database_url: str, killable_kafka_broker: KafkaBroker,
) -> None:
    """Before: the first timeout stopped the relay (the command exited 1)."""
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    lifecycles(service, 2, "waiting")
    config = RelayConfig(bootstrap=killable_kafka_broker.bootstrap,
                         topic_prefix=f"t{uuid.uuid4().hex[:8]}.", partitions=4,
                         retry_first=0.1, retry_most=0.2)
    state = Running(CoordinatorStarting(service, database_url, config), service)
    state.threads = [threading.Thread(target=state._relay, daemon=True)]
    state.threads[0].start()
    try:
        head = service.recorder.max_notification_id() or 0
        wait_for(lambda: state.relay.position >= head or bool(state.errors), 90,
                 "the relay to publish")
        assert state.errors == [], "the relay gave up while the coordinator was starting"
        assert state.relay.producers_created == 1
    finally:
        state.finish()
        service.close()
