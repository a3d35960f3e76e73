"""One API command is one trace: the HTTP server span, the application command
under it, the store commit under that (real app, real PostgreSQL, the SDK's
in-memory exporter)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.integration.callcentre_api_support import open_api


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The span's parent, its parent's parent, ... up to the root (among ``spans``)."""
    by_id = {s.context.span_id: s for s in spans}
    chain: list[ReadableSpan] = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_one_api_command_gives_one_trace_request_command_commit(
    database_url: str, memory_spans: InMemorySpanExporter,
) -> None:
    with open_api(database_url) as api:
        memory_spans.clear()  # whatever starting the app did
        response = api.client.post("/v1/agents", headers={"X-Request-ID": "trace-test-1"},
                                   json={"key": "alice", "name": "Alice Example"})
        assert response.status_code == 201, response.text
        spans = memory_spans.get_finished_spans()

    by_name = {span.name: span for span in spans}
    server = by_name["POST /v1/agents"]
    command = by_name["command create_agent"]
    commit = by_name["store commit"]
    assert server.kind == SpanKind.SERVER
    assert server.parent is None  # the trace's root: no traceparent was sent
    # FastAPI's endpoint span sits between the request and the command.
    assert [span.name for span in ancestors(commit, spans)] == [
        "command create_agent", "fastapi.endpoint", "POST /v1/agents"]
    assert command.parent is not None
    assert commit.parent is not None
    assert commit.parent.span_id == command.context.span_id
    assert {span.context.trace_id for span in spans} == {server.context.trace_id}
    assert command.attributes is not None
    assert command.attributes["dialtone.tenant"] == "default"
    assert commit.attributes is not None
    assert commit.attributes["dialtone.events"] >= 1  # type: ignore[operator]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/agents"


def test_a_callers_traceparent_makes_the_request_part_of_its_trace(
    database_url: str, memory_spans: InMemorySpanExporter,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with open_api(database_url) as api:
        memory_spans.clear()
        response = api.client.post(
            "/v1/agents", json={"key": "bob", "name": "Bob"},
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        assert response.status_code == 201, response.text
        spans = memory_spans.get_finished_spans()
    assert {format(span.context.trace_id, "032x") for span in spans} == {trace_id}
    assert "command create_agent" in {span.name for span in spans}


def test_probes_and_scrapes_are_not_traced(
    database_url: str, memory_spans: InMemorySpanExporter,
) -> None:
    with open_api(database_url) as api:
        memory_spans.clear()
        for path in ("/metrics", "/readyz"):
            api.client.get(path)
        spans = memory_spans.get_finished_spans()
    assert spans == ()
