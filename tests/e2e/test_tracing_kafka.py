"""Trace context across Kafka: the relay's publish span travels in each record's
``traceparent`` header, and the Faust worker's batch span is linked to it, with
the projections' spans under the batch. Real relay and worker processes on the
real broker, exporting over OTLP/HTTP to a receiver in the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from opentelemetry.trace import SpanKind

from application.calls import CallService
from devtools.simulate import lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.tracing import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.kafka

PRODUCER = SpanKind.PRODUCER.value + 1  # OTLP numbers kinds from 1 (INTERNAL)
CONSUMER = SpanKind.CONSUMER.value + 1


def _cdrs(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def test_the_consumer_span_is_linked_to_the_relays_publish_span(
    database_url: str, kafka_bootstrap: str, otlp_receiver: OtlpReceiver,
    dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    apply_migrations(database_url)
    env = {"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "DIALTONE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
           "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "200"}  # export within a fraction of a second
    relay, worker = dialtone_processes(["relay"], env), dialtone_processes(["worker"], env)
    lifecycles(CallService(env=eventsourcing_env(database_url)), 1, "traced")
    wait_for(lambda: _cdrs(database_url) == 1, 90, "the CDR row", processes=(relay, worker))

    def linked_batch() -> ReceivedSpan | None:
        published = {(s.trace_id, s.span_id) for s in otlp_receiver.named("relay publish")}
        return next((s for s in otlp_receiver.named("project call")
                     if published.intersection(s.links)), None)

    wait_for(lambda: linked_batch() is not None, 30,
             "a worker batch span linked to a relay publish span", processes=(relay, worker))
    batch = linked_batch()
    assert batch is not None
    [publish] = [s for s in otlp_receiver.named("relay publish")
                 if (s.trace_id, s.span_id) in batch.links][:1]
    assert (publish.service, publish.kind) == ("dialtone-relay", PRODUCER)
    assert (batch.service, batch.kind) == ("dialtone-worker", CONSUMER)
    assert publish.attributes["messaging.system"] == "kafka"
    # The projections applied the batch under its span.
    wait_for(lambda: any(s.parent_span_id == batch.span_id
                         for s in otlp_receiver.spans if s.name.startswith("projection ")),
             15, "projection spans under the batch", processes=(worker,))
