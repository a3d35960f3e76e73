"""OpenTelemetry traces: one tracer for the platform, the spans its hooks open,
and the trace context carried in Kafka message headers.

The code paths traced (docs/observability.md, Traces):

- API request (FastAPI instrumentation, api/app.py) -> ``command <name>`` (the
  application service running one command) -> ``store commit`` (the append of
  its events in one transaction);
- ``relay publish`` (a PRODUCER span per page, whose context goes into every
  record's ``traceparent`` header) -> Kafka -> ``project <kind>`` (a CONSUMER
  span per Faust batch, *linked* to each distinct producer context in the
  batch: a batch holds records of many pages, so it has no single parent) ->
  ``projection <group>`` (one group's transaction).

Everything here goes through the OpenTelemetry *API*: until a process installs
an SDK provider (``setup_tracing``, only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set; or a test's in-memory exporter) every span is the API's non-recording
span and nothing is injected into headers, so tracing off costs a few
attribute look-ups per command and per page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

TRACER_NAME = "dialtone"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# kafka-python headers: (name, bytes) pairs; Faust's: a list of pairs or a mapping.
KafkaHeaders = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


def tracer() -> trace.Tracer:
    """The platform's tracer. A proxy until a provider is installed, so modules
    may take it at import time and still record once a provider is set."""
    return trace.get_tracer(TRACER_NAME)


def exporting() -> bool:
    """Whether this process is asked to export traces (the OTLP endpoint is set)."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def setup_tracing(service: str) -> bool:
    """Install an SDK tracer provider exporting over OTLP/HTTP when the endpoint
    is set (the exporter reads ``OTEL_EXPORTER_OTLP_*`` itself); otherwise leave
    the API's no-op provider. Returns whether traces are exported."""
    if not exporting():
        return False
    # Imported here: the SDK and the OTLP exporter cost every dialtone process
    # start about 0.15 s of CPU, and only a process that exports needs them.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": service_name(service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def service_name(command: str) -> str:
    """The traces' service name: ``OTEL_SERVICE_NAME`` when set (OpenTelemetry's own
    variable, which the explicit resource attribute would otherwise override), else
    ``dialtone-<command>``."""
    return os.environ.get("OTEL_SERVICE_NAME") or f"dialtone-{command}"


def recording() -> bool:
    """Whether spans are recorded here (an SDK provider is installed)."""
    return not isinstance(trace.get_tracer_provider(),
                          trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def command_name(command: Callable[..., object]) -> str:
    """``create_agent`` for the closure ``CallCentreService.create_agent.<locals>.command``."""
    owner = command.__qualname__.split(".<locals>.", 1)[0]
    return owner.rsplit(".", 1)[-1]


@contextmanager
def command_span(application: str, command: str, tenant: str | None) -> Iterator[Span]:
    """One application command (its retries on a concurrent change included)."""
    with tracer().start_as_current_span(f"command {command}") as span:
        if span.is_recording():
            span.set_attribute("dialtone.application", application)
            span.set_attribute("dialtone.command", command)
            if tenant is not None:
                span.set_attribute("dialtone.tenant", tenant)
        yield span


@contextmanager
def store_commit_span(application: str, events: int) -> Iterator[Span]:
    """The append of one command's (or batch's) events in one transaction."""
    with tracer().start_as_current_span("store commit", kind=SpanKind.CLIENT) as span:
        if span.is_recording():
            span.set_attribute("db.system", "postgresql")
            span.set_attribute("dialtone.application", application)
            span.set_attribute("dialtone.events", events)
        yield span


@contextmanager
def publish_span(application: str, events: int, last_position: int) -> Iterator[Span]:
    """One relay page: its context is what ``trace_headers`` puts on each record."""
    with tracer().start_as_current_span("relay publish", kind=SpanKind.PRODUCER) as span:
        if span.is_recording():
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.operation.type", "publish")
            span.set_attribute("messaging.batch.message_count", events)
            span.set_attribute("dialtone.application", application)
            span.set_attribute("dialtone.position", last_position)
        yield span


def trace_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (W3C ``traceparent``, and
    ``tracestate`` when there is one); empty when nothing is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def context_of(headers: KafkaHeaders) -> Context:
    """The trace context a producer put in a message's headers (empty if none)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    carrier = {name.lower(): _text(value) for name, value in pairs}
    return propagate.extract(carrier)


def producer_links(messages_headers: Iterable[KafkaHeaders]) -> list[Link]:
    """One link per distinct producer span among the messages (a page's records
    share one), in first-seen order. Each distinct ``traceparent`` is parsed once:
    parsing every record's was 10 us a record, ~10 % of the worker's CPU per event
    (bench/observability.py)."""
    links: dict[tuple[int, int], Link] = {}
    seen: set[bytes | str] = set()
    for headers in messages_headers:
        raw = _traceparent(headers)
        if raw is None or raw in seen:
            continue
        seen.add(raw)
        producer = trace.get_current_span(context_of(headers)).get_span_context()
        if producer.is_valid and (producer.trace_id, producer.span_id) not in links:
            links[(producer.trace_id, producer.span_id)] = Link(producer)
    return list(links.values())


@contextmanager
def consume_span(kind: str, messages_headers: Iterable[KafkaHeaders],
                 events: int) -> Iterator[Span]:
    """One Faust batch, linked to the relay pages its records came from. Links
    are computed only when spans are recorded (decoding headers costs)."""
    links = producer_links(messages_headers) if recording() else []
    with tracer().start_as_current_span(f"project {kind}", kind=SpanKind.CONSUMER,
                                        links=links) as span:
        if span.is_recording():
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.operation.type", "process")
            span.set_attribute("messaging.batch.message_count", events)
        yield span


@contextmanager
def projection_span(group: str, events: int) -> Iterator[Span]:
    """One projection group applying one batch (rows and position, one transaction)."""
    with tracer().start_as_current_span(f"projection {group}") as span:
        if span.is_recording():
            span.set_attribute("dialtone.projection", group)
            span.set_attribute("dialtone.events", events)
        yield span


def _traceparent(headers: KafkaHeaders) -> bytes | str | None:
    """A message's raw ``traceparent`` header, if it has one."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return next((value for name, value in pairs if name.lower() == "traceparent"), None)


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
