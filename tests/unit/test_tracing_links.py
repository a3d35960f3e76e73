"""application.tracing.producer_links: one link per relay page among a Faust
batch's records, in first-seen order, whatever form the headers come in."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from application.tracing import KafkaHeaders, producer_links, trace_headers

Headers = list[tuple[str, bytes]]


def ids(context: SpanContext) -> tuple[int, int]:
    return context.trace_id, context.span_id


def page_headers(provider: TracerProvider, name: str) -> tuple[tuple[int, int], Headers]:
    """A producer span's ids and the headers the relay puts on its records."""
    with provider.get_tracer("test").start_as_current_span(name) as span:
        return ids(span.get_span_context()), [("content-type", b"application/cloudevents+json"),
                                               *trace_headers()]


def test_one_link_per_page_in_first_seen_order() -> None:
    provider = TracerProvider()
    first, first_headers = page_headers(provider, "page 1")
    second, second_headers = page_headers(provider, "page 2")
    as_mapping = {name.upper(): value for name, value in second_headers}  # Faust may give a dict
    batch: list[KafkaHeaders] = [second_headers, None, first_headers, second_headers, [],
                                 as_mapping, first_headers]

    links = producer_links(batch)

    assert [ids(link.context) for link in links] == [second, first]
    assert all(link.context.is_remote for link in links)


def test_no_links_without_trace_headers() -> None:
    assert producer_links([None, [("content-type", b"application/json")], {}]) == []
