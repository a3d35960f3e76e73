"""What every benchmark needs: real servers in temporary directories, percentiles,
and a line saying how busy the shared machine was."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from psycopg import sql

from devtools.kafka import KafkaBroker
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres


@contextlib.contextmanager
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port())
        server.start()
        try:
            yield server
        finally:
            server.destroy()


def restart_with(server: EmbeddedPostgres, settings: dict[str, str]) -> None:
    """``ALTER SYSTEM`` each setting, then restart the server: ``max_connections``
    (the benchmarks' dozens of workers hold several connections each) takes effect
    only at start."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(name), sql.Literal(value)))
    server.stop()
    server.start()


@contextlib.contextmanager
def kafka_broker() -> Iterator[KafkaBroker]:
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-kafka-") as tmp:
        broker = KafkaBroker(Path(tmp) / "data", free_port(), free_port())
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def percentile_ms(samples_s: Sequence[float], fraction: float) -> float:
    if len(samples_s) < 2:
        return samples_s[0] * 1000 if samples_s else float("nan")
    cuts = statistics.quantiles(samples_s, n=1000, method="inclusive")
    return cuts[min(len(cuts) - 1, round(fraction * 1000) - 1)] * 1000


def machine_facts() -> str:
    """The run shares the machine: say how busy it was (1/5/15-minute load)."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass
class OtlpSink:
    """What a loopback OTLP/HTTP receiver (devtools.otlp) got: export requests,
    spans, bytes, decoded as a collector would decode them."""

    endpoint: str
    requests: int = 0
    spans: int = 0
    size: int = 0  # bytes received
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = sum(len(scope.spans) for resource in request.resource_spans
                    for scope in resource.scope_spans)
        with self.lock:
            self.requests += 1
            self.spans += spans
            self.size += len(body)


class Scraper(threading.Thread):
    """Fetches every ``/metrics`` URL once per ``interval`` seconds, as Prometheus
    would; a target not up yet (or gone) is skipped until the next round."""

    def __init__(self, urls: Sequence[str], interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="bench-scraper")
        self.urls = list(urls)
        self.interval = interval
        self.scrapes = 0
        self.failures = 0
        self.bytes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx2.Client(timeout=5) as client:
            while not self._halt.wait(self.interval):
                for url in self.urls:
                    self._scrape(client, url)

    def _scrape(self, client: httpx2.Client, url: str) -> None:
        try:
            response = client.get(url)
            response.raise_for_status()
        except httpx2.HTTPError:
            self.failures += 1
            return
        self.scrapes += 1
        self.bytes += len(response.content)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; TimeoutError naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)
