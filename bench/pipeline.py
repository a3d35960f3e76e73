"""Pipeline benchmark: relay, Faust projections, end-to-end latency, rebuild.

Run: .venv/bin/python -m bench.pipeline   (about 2 minutes; starts its own
embedded PostgreSQL and Kafka broker, and `dialtone worker` as a real process)

Prints, in one run:
1. relay throughput: a backlog of stored events published to Kafka (events/s);
2. projection throughput through the Faust worker (events/s, from its first
   applied batch to the last);
3. end-to-end latency at a steady rate (``--rate``, default 50 calls/s, 400
   events/s; one commit per call): from the commit of a call's events to its
   ended CDR row in the table (store -> projected) and to its CDR first returned
   by GET /v1/cdrs, p50/p99, with the rate the load generator reached;
4. rebuild rate of the cdr projection from the store (events/s).
Targets: relay >= 5,000/s; projections >= 5,000/s; e2e p99 < 500 ms; rebuild >= 20,000/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx2
import psycopg

from application.calls import CallService
from application.identity.model import Role
from bench.common import embedded_postgres, kafka_broker, machine_facts, percentile_ms, wait
from devtools.simulate import EVENTS_PER_LIFECYCLE, full_lifecycle, lifecycles
from dialtone.commands.users import issue_api_key
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from streams.rebuild import rebuild
from streams.relay import Relay, RelayConfig

DIALTONE = Path(sys.executable).parent / "dialtone"


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0] or 0) if row else 0


def bench_relay(service: CallService, dsn: str, bootstrap: str, events: int,
                topic_prefix: str = "") -> float:
    relay = Relay(service, dsn, RelayConfig(bootstrap=bootstrap, page_size=5000,
                                            topic_prefix=topic_prefix))
    relay.open()
    started = time.perf_counter()
    relayed = 0
    while relayed < events:
        relayed += relay.relay_page()
    elapsed = time.perf_counter() - started
    relay.close()
    return relayed / elapsed


def start(command: list[str], dsn: str, bootstrap: str, log: Path,
          **env: str) -> subprocess.Popen[bytes]:
    """A dialtone process, as deployed: its own interpreter, so no shared GIL."""
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_KAFKA_BOOTSTRAP": bootstrap,
           "DIALTONE_LOG_LEVEL": "WARNING", **env}
    with log.open("ab") as out:
        return subprocess.Popen([str(DIALTONE), *command], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def bench_projections(dsn: str, events: int) -> float:
    applied = "SELECT count(*) FROM call_events"
    wait(lambda: count(dsn, applied) > 0, 120, "the worker's first batch")
    first, started = count(dsn, applied), time.perf_counter()
    wait(lambda: count(dsn, applied) >= events, 300, "the worker to catch up")
    return (events - first) / (time.perf_counter() - started)


class ApiPoller(threading.Thread):
    """Polls GET /v1/cdrs and notes when each call's CDR first became visible.

    Each poll asks only for calls started since the oldest call not seen yet,
    so the poller's own load stays small and constant.
    """

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.started: dict[UUID, datetime] = {}  # written by the load generator
        self.seen: dict[UUID, float] = {}
        self.stop = threading.Event()

    @property
    def since(self) -> datetime:
        unseen = [t for c, t in list(self.started.items()) if c not in self.seen]
        return min(unseen, default=datetime.now(UTC)) - timedelta(seconds=1)

    def run(self) -> None:
        with httpx2.Client(base_url=self.base_url, timeout=5, headers=self.headers) as client:
            while not self.stop.is_set():
                self._poll(client)
                time.sleep(0.005)

    def _poll(self, client: httpx2.Client) -> None:
        cursor = None
        while True:
            params = {"from": self.since.isoformat(), "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/cdrs", params=params).json()
            now = time.perf_counter()
            for row in page["data"]:
                self.seen.setdefault(UUID(row["call_id"]), now)
            cursor = page.get("next_cursor")
            if not cursor:
                return


class DbPoller(threading.Thread):
    """Polls the cdr table (every 5 ms) for the calls committed and not seen yet, ended:
    store commit -> projected, without the API in the way."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.committed: dict[UUID, float] = {}  # written by the load generator
        self.seen: dict[UUID, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.005):
                unseen = [c for c in list(self.committed) if c not in self.seen]
                if not unseen:
                    continue
                rows = conn.execute("SELECT call_id FROM cdr WHERE call_id = ANY(%s)"
                                    " AND ended_at IS NOT NULL", (unseen,)).fetchall()
                now = time.perf_counter()
                for (call_id,) in rows:
                    self.seen.setdefault(call_id, now)


def api_up(base_url: str) -> bool:
    """/readyz: the API serves. Not /healthz, which also wants a router and
    heartbeats of services this benchmark does not run (docs/health.md)."""
    try:
        return httpx2.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


@dataclass
class Latencies:
    projected: list[float]  # store commit -> CDR row in the table (s)
    api: list[float]  # store commit -> CDR first returned by GET /v1/cdrs (s)
    commits_per_s: float  # what the load generator reached


def bench_latency(service: CallService, dsn: str, base_url: str, seconds: float,
                  calls_per_s: int, api_key: str) -> Latencies:
    """Steady load while relay, worker and API run as processes."""
    wait(lambda: api_up(base_url), 60, "the API")
    poller, projected = ApiPoller(base_url, api_key), DbPoller(dsn)
    poller.start()
    projected.start()
    committed: dict[UUID, float] = {}
    interval, next_at = 1 / calls_per_s, time.perf_counter()
    began = time.perf_counter()
    for n in range(int(seconds * calls_per_s)):
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
        start = datetime.now(UTC)
        with service.batch():
            call_id = full_lifecycle(service, f"steady-{n}@bench", start)
        committed[call_id] = projected.committed[call_id] = time.perf_counter()
        poller.started[call_id] = start
    rate = len(committed) / (time.perf_counter() - began)
    wait(lambda: committed.keys() <= poller.seen.keys(), 120, "every CDR through the API")
    wait(lambda: committed.keys() <= projected.seen.keys(), 30, "every CDR in the table")
    poller.stop.set()
    projected.stop.set()
    return Latencies([projected.seen[c] - t for c, t in committed.items()],
                     [poller.seen[c] - t for c, t in committed.items()], rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="dialtone pipeline benchmark")
    parser.add_argument("--calls", type=int, default=5000, help="backlog calls (x8 events)")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady-load duration")
    parser.add_argument("--rate", type=int, default=50, help="steady calls/s (x8 events/s)")
    args = parser.parse_args(argv)
    events = args.calls * EVENTS_PER_LIFECYCLE
    print(machine_facts())
    with embedded_postgres() as pg, kafka_broker() as broker:
        dsn = pg.dsn("bench_pipeline")
        ensure_database(dsn)
        apply_migrations(dsn)
        service = CallService(env=eventsourcing_env(dsn))
        lifecycles(service, args.calls, "backlog", batch=100)
        relay_rate = bench_relay(service, dsn, broker.bootstrap, events)
        logs, port = Path(pg.data_dir).parent, free_port()
        processes = [start(["worker"], dsn, broker.bootstrap, logs / "worker.log")]
        try:
            projection_rate = bench_projections(dsn, events)
            processes += [
                start(["relay"], dsn, broker.bootstrap, logs / "relay.log"),
                start(["api"], dsn, broker.bootstrap, logs / "api.log",
                      DIALTONE_HTTP_PORT=str(port)),
            ]
            latencies = bench_latency(service, dsn, f"http://127.0.0.1:{port}", args.seconds,
                                      args.rate, issue_api_key(dsn, "bench", Role.INTEGRATOR))
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
        total = count(dsn, "SELECT count(*) FROM call_events")
        started = time.perf_counter()
        rebuilt = rebuild(service, dsn, ("cdr",))
        rebuild_rate = rebuilt / (time.perf_counter() - started)
    print(f"\n{'figure':<52} {'value':>12}  target")
    print("-" * 76)
    print(f"{'relay throughput (events/s)':<52} {relay_rate:>12,.0f}  >= 5,000")
    print(f"{'projection throughput via Faust (events/s)':<52} {projection_rate:>12,.0f}  "
          ">= 5,000")
    events_per_s = latencies.commits_per_s * EVENTS_PER_LIFECYCLE
    print(f"{'steady load reached (calls/s, events/s)':<52} "
          f"{latencies.commits_per_s:>5,.0f} {events_per_s:>6,.0f}  {args.rate} asked")
    for label, samples, target in (("store -> projected", latencies.projected, ""),
                                   ("store -> GET /v1/cdrs", latencies.api, "  < 500")):
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            print(f"{label + ' ' + name + ' (ms)':<52} "
                  f"{percentile_ms(samples, fraction):>12,.0f}{target if name == 'p99' else ''}")
    print(f"{'rebuild cdr from ' + str(total) + ' events (events/s)':<52} "
          f"{rebuild_rate:>12,.0f}  >= 20,000")
    print(f"\nafter: {machine_facts()}")


if __name__ == "__main__":
    main()
