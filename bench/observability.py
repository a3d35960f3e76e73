"""Observability overhead on the event path: metrics and tracing ON against OFF.

Run: .venv/bin/python -m bench.observability   (about 3-4 minutes; starts its own
embedded PostgreSQL, Kafka broker and OTLP receiver, and real dialtone processes)

The figures of bench/pipeline.py, measured in both modes, interleaved
(off, on, off, on, ...) so that the shared machine's drift does not favour one:

1. relay throughput: a stored backlog published to Kafka by ``Relay`` (events/s);
2. projection throughput through ``dialtone worker`` (Faust) (events/s);
3. store commit -> CDR visible through ``GET /v1/cdrs``, p50/p99, at a steady
   rate with ``dialtone relay``, ``worker`` and ``api`` as processes;
4. CPU time per event of the relay (this process), of the Faust worker, and of
   worker + relay + api under the steady load: on a shared machine the
   wall-clock figures move with the other work far more than CPU time does.

ON: every process serves Prometheus metrics (``DIALTONE_METRICS_PORT``; the API
on its HTTP port; this benchmark's own writer and relay on a port of its own)
and a scraper thread (in the parent) fetches each ``/metrics`` once a second; every process
exports its spans over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``) to a loopback
receiver that decodes them. OFF: no metrics server, nothing scraped, no OTLP
endpoint. prometheus-client's counters and histograms are updated in both modes
(the code always calls them; the mode only decides whether anyone reads them):
their cost is timed alone here and printed.

Each run is a child process (``--child on|off``) with its own database and
Kafka topic prefix: OpenTelemetry's tracer provider can be installed once per
process, and a fresh interpreter per run keeps the runs alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram

from application.calls import CallService
from application.identity.model import Role
from application.metrics import serve_metrics
from application.tracing import ENDPOINT_VARIABLES, setup_tracing, tracer
from bench.common import (
    OtlpSink,
    Scraper,
    embedded_postgres,
    kafka_broker,
    machine_facts,
    wait,
)
from bench.common import percentile_ms as pct
from bench.pipeline import api_up, bench_latency, bench_relay, count, start
from devtools.otlp import otlp_receiver
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone.commands.users import issue_api_key
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port

MODES = ("off", "on")
TARGET_PCT = 5.0


@dataclass
class Run:
    """One child's figures (throughputs in events/s, latencies in ms)."""

    mode: str
    relay: float
    projections: float
    p50_ms: float
    p99_ms: float
    # CPU time per event (us): less moved by the other work on a shared machine than
    # wall-clock rates. relay: this process while it relays the backlog (its
    # producer thread included); worker: the Faust worker from its first applied
    # batch to the last; steady: worker + relay + api processes during steady load.
    relay_cpu_us: float = 0.0
    worker_cpu_us: float = 0.0
    steady_cpu_us: float = 0.0
    # Set by the parent: 1-minute load average at the start, /metrics fetched (and
    # refused: a target not started yet or gone), spans the receiver decoded.
    load: float = 0.0
    scrapes: int = 0
    scrape_failures: int = 0
    spans: int = 0


# -- one run (the child process) ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def relay_backlog(service: CallService, dsn: str, bootstrap: str, events: int,
                  prefix: str) -> tuple[float, float]:
    """bench.pipeline's relay figure, and this process's CPU per event (us) meanwhile."""
    cpu = time.process_time()
    rate = bench_relay(service, dsn, bootstrap, events, prefix)
    return rate, (time.process_time() - cpu) / events * 1e6


def project_backlog(dsn: str, worker: int, events: int) -> tuple[float, float]:
    """bench.pipeline's projection figure, and the worker's CPU per event (us) over
    the same span (from its first applied batch: its start-up is not counted)."""
    applied = "SELECT count(*) FROM call_events"
    wait(lambda: count(dsn, applied) > 0, 120, "the worker's first batch")
    first, started, cpu = count(dsn, applied), time.perf_counter(), cpu_seconds(worker)
    wait(lambda: count(dsn, applied) >= events, 300, "the worker to catch up")
    return ((events - first) / (time.perf_counter() - started),
            (cpu_seconds(worker) - cpu) / (events - first) * 1e6)


def child_run(mode: str, dsn: str, bootstrap: str, prefix: str, logs: Path,
              ports: dict[str, int], args: argparse.Namespace) -> Run:
    on = mode == "on"
    if on:
        setup_tracing("bench")  # the writer's and in-process relay's spans (store commit, publish)
        serve_metrics(ports["bench"])  # the writer's and relay's series; the parent scrapes
    env = {"DIALTONE_TOPIC_PREFIX": prefix}
    ensure_database(dsn)
    apply_migrations(dsn)
    service = CallService(env=eventsourcing_env(dsn))
    events = args.calls * EVENTS_PER_LIFECYCLE
    lifecycles(service, args.calls, "backlog", batch=100)
    relay_rate, relay_cpu = relay_backlog(service, dsn, bootstrap, events, prefix)

    def metrics_env(name: str) -> dict[str, str]:
        return {**env, "DIALTONE_METRICS_PORT": str(ports[name]) if on else "0"}

    base_url = f"http://127.0.0.1:{ports['api']}"
    processes = [start(["worker"], dsn, bootstrap, logs / f"{prefix}worker.log",
                       **metrics_env("worker"))]
    try:
        projection_rate, worker_cpu = project_backlog(dsn, processes[0].pid, events)
        processes += [
            start(["relay"], dsn, bootstrap, logs / f"{prefix}relay.log", **metrics_env("relay")),
            start(["api"], dsn, bootstrap, logs / f"{prefix}api.log", **env,
                  DIALTONE_HTTP_PORT=str(ports["api"])),
        ]
        key = issue_api_key(dsn, "bench", Role.INTEGRATOR)
        wait(lambda: api_up(base_url), 60, "the API")
        cpu = sum(cpu_seconds(p.pid) for p in processes)
        latencies = bench_latency(service, dsn, base_url, args.seconds, args.rate, key).api
        steady_cpu = (sum(cpu_seconds(p.pid) for p in processes) - cpu) * 1e6 / (
            len(latencies) * EVENTS_PER_LIFECYCLE)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        if on:  # flush this process's last spans before the parent counts them
            shutdown = getattr(trace.get_tracer_provider(), "shutdown", None)
            if shutdown is not None:
                shutdown()
    return Run(mode, relay_rate, projection_rate, pct(latencies, 0.5), pct(latencies, 0.99),
               relay_cpu, worker_cpu, steady_cpu)


# -- the parent: servers, interleaved runs, the table ------------------------------------------


def spawn(mode: str, number: int, dsn: str, bootstrap: str, otlp: str, logs: Path,
          args: argparse.Namespace) -> Run:
    """One run in a child process; ON: this process scrapes the child's and its
    dialtone processes' /metrics every second meanwhile (a scraper's own CPU is
    Prometheus's, not the pipeline's)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k != "DIALTONE_METRICS_PORT"}
    ports = {name: free_port() for name in ("bench", "worker", "relay", "api")}
    scraper = None
    if mode == "on":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
        scraper = Scraper([f"http://127.0.0.1:{port}/metrics" for port in ports.values()])
        scraper.start()
    command = [sys.executable, "-m", "bench.observability", "--child", mode,
               "--dsn", dsn, "--bootstrap", bootstrap, "--prefix", f"obs{number}.",
               "--logs", str(logs), "--ports", json.dumps(ports), "--calls", str(args.calls),
               "--seconds", str(args.seconds), "--rate", str(args.rate)]
    try:
        done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True)
    finally:
        if scraper is not None:
            scraper.stop()
    run = Run(**json.loads(done.stdout.strip().splitlines()[-1]))
    if scraper is not None:
        run.scrapes, run.scrape_failures = scraper.scrapes, scraper.failures
    return run


def instrument_costs() -> str:
    """What every process pays whatever the mode: a counter increment and a histogram
    observation (prometheus-client), and a span with no provider installed."""
    registry = CollectorRegistry()
    counter = Counter("bench_total", "", ["kind"], registry=registry).labels(kind="call")
    histogram = Histogram("bench_seconds", "", ["kind"], registry=registry).labels(kind="call")
    n = 200_000

    def span() -> None:
        with tracer().start_as_current_span("bench"):
            pass

    costs = [min(timeit.repeat(f, number=n, repeat=3)) / n * 1e6
             for f in (counter.inc, lambda: histogram.observe(0.01), span)]
    return (f"per call, in this process: Counter.inc {costs[0]:.2f} us, "
            f"Histogram.observe {costs[1]:.2f} us, span without a provider {costs[2]:.2f} us")


def overhead(off: float, on: float, higher_is_better: bool) -> float:
    """ON's cost in % of OFF (positive: ON is worse)."""
    return ((off - on) if higher_is_better else (on - off)) / off * 100


FIGURES = (  # label, Run field, higher is better
    ("relay throughput (events/s)", "relay", True),
    ("projection throughput via Faust (events/s)", "projections", True),
    ("commit -> CDR via API p50 (ms)", "p50_ms", False),
    ("commit -> CDR via API p99 (ms)", "p99_ms", False),
    ("relay CPU per event (us)", "relay_cpu_us", False),
    ("Faust worker CPU per event (us)", "worker_cpu_us", False),
    ("worker+relay+api CPU per event, steady load (us)", "steady_cpu_us", False),
)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(f"\n{'run':<4} {'mode':<4} {'load1':>6} {'relay/s':>8} {'proj/s':>7} {'p50':>6} "
          f"{'p99':>6} {'relay us':>8} {'work us':>8} {'steady us':>9} {'scrapes':>7} "
          f"{'spans':>6}")
    for n, run in enumerate(runs, 1):
        print(f"{n:<4} {run.mode:<4} {run.load:>6.2f} {run.relay:>8,.0f} "
              f"{run.projections:>7,.0f} {run.p50_ms:>6,.0f} {run.p99_ms:>6,.0f} "
              f"{run.relay_cpu_us:>8,.0f} {run.worker_cpu_us:>8,.0f} {run.steady_cpu_us:>9,.0f} "
              f"{run.scrapes:>7} {run.spans:>6}")
    print(f"\nsteady load: {args.rate} calls/s ({args.rate * EVENTS_PER_LIFECYCLE} events/s) for "
          f"{args.seconds:g} s; backlog {args.calls * EVENTS_PER_LIFECYCLE} events")
    print(f"{'figure (median of the runs of each mode)':<52} {'off':>8} {'on':>8} "
          f"{'overhead':>9}  target")
    print("-" * 88)
    for label, name, higher in FIGURES:
        off = statistics.median(getattr(r, name) for r in runs if r.mode == "off")
        on = statistics.median(getattr(r, name) for r in runs if r.mode == "on")
        print(f"{label:<52} {off:>8,.0f} {on:>8,.0f} {overhead(off, on, higher):>8.1f}%  "
              f"<= {TARGET_PCT:.0f}%")


def parent(args: argparse.Namespace) -> None:
    print(machine_facts())
    print(instrument_costs())
    runs: list[Run] = []
    with embedded_postgres() as pg, kafka_broker() as broker, otlp_receiver(OtlpSink) as sink:
        logs = Path(tempfile.mkdtemp(prefix="dialtone-bench-obs-"))  # kept: the processes' logs
        print(f"process logs in {logs}")
        for number in range(2 * args.rounds):
            mode = MODES[number % 2]
            load, spans = os.getloadavg()[0], sink.spans
            run = spawn(mode, number, pg.dsn(f"bench_obs_{number}"), broker.bootstrap,
                        sink.endpoint, logs, args)
            run.load, run.spans = load, sink.spans - spans
            runs.append(run)
            print(f"run {number + 1} ({mode}): {asdict(run)}", flush=True)
        report(runs, args)
        print(f"\nOTLP receiver: {sink.requests} export requests, {sink.spans} spans, "
              f"{sink.size / 1e6:.1f} MB")
    print(f"after: {machine_facts()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="dialtone observability overhead benchmark")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (off, on)")
    parser.add_argument("--calls", type=int, default=1500, help="backlog calls (x8 events)")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady-load duration")
    parser.add_argument("--rate", type=int, default=50, help="steady calls/s (x8 events/s)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    for internal in ("--dsn", "--bootstrap", "--prefix", "--logs", "--ports"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        parent(args)
        return
    assert (args.child == "on") == any(os.environ.get(v) for v in ENDPOINT_VARIABLES)
    run = child_run(args.child, args.dsn, args.bootstrap, args.prefix, Path(args.logs),
                    json.loads(args.ports), args)
    print(json.dumps(asdict(run)))


if __name__ == "__main__":
    main()
