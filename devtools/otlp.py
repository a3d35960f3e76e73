"""A loopback OTLP/HTTP trace receiver, in place of a collector: dialtone processes
export to it when OTEL_EXPORTER_OTLP_ENDPOINT points at it. The tests keep the
spans they are sent (tests/fixtures/tracing.py); the benchmarks count them
(bench/common.py). Each brings its own sink; this is the server they share."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

TRACES_PATH = "/v1/traces"


class TraceSink(Protocol):
    """Takes each export request's body (an ExportTraceServiceRequest, protobuf)."""

    def add(self, body: bytes) -> None: ...


Sink = TypeVar("Sink", bound=TraceSink)


@contextlib.contextmanager
def otlp_receiver(make_sink: Callable[[str], Sink]) -> Iterator[Sink]:
    """Serves OTLP/HTTP traces on a free loopback port until the block ends;
    ``make_sink`` gets the endpoint to export to, and the block gets the sink."""
    holder: list[Sink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == TRACES_PATH:
                holder[0].add(body)
            # Answered 200 whatever the path, as a collector that ignores a signal would.
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the sink's owner reports what arrived

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(make_sink(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
