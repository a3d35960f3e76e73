"""The supervisor's live view under load (issue 10; a benchmark, not a test).

    .venv/bin/python -m bench.live [--clients 200] [--calls-per-s 50] [--stream-s 30]
                                   [--rate 200] [--seconds 30] [--kafka]

One embedded PostgreSQL and `dialtone up` on it as a real process (embedded
mode: the projections run inside `up`; no B2BUA worker). `--kafka`: the Kafka
deployment instead, an embedded broker with `dialtone relay` and `dialtone
worker` (Faust) projecting, `up` serving the API only. The tenant is the one
bench/live_snapshot.py builds (50 queues, 500 agents each in 3 queues, a call
every 5 s), dated so that its day is today, projected straight into the tables.

1. Stream. `--clients` Server-Sent Event clients (another process, aiohttp on
   uvloop) hold GET /v1/live/stream as a supervisor, while this process stores
   `--calls-per-s` calls a second (from the moment every client has had its
   first snapshot) through the real CallCentreService into the event store `up`
   projects: each call is enqueued in a queue of its own
   tenant, and abandoned 2 s later (two commits per call). For every commit,
   delivery latency = the instant a client received the first event whose
   `position` covers the commit's notification id - the instant the commit
   returned (both `time.time()` on the same machine), over every client and
   commit; and the API process's CPU per connected client.
2. Snapshot. GET /v1/live as a supervisor at `--rate` requests/s for
   `--seconds`, open loop, from bench/api.py's generator (its own process):
   p50/p90/p99/max, and the server's CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import httpx2
import psutil
import uvloop

from application.callcentre import CallCentreService
from application.identity.model import Role
from bench import api as bench_api
from bench.common import embedded_postgres, machine_facts, percentile_ms
from bench.live_latency import (
    Heard,
    KafkaMarks,
    delivery_latencies,
    listen_projected,
    match_projected,
    projected_latencies,
)
from bench.live_setup import kafka_pipeline, load_tenant, position_rows, reads_told
from bench.live_snapshot import AGENTS, QUEUES
from bench.up import running_up
from dialtone.commands.users import ensure_initial_admin, issue_api_key
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from streams.topics import topic_for

CONNECT_S = 120.0  # the clients' process start and every client's first snapshot


# --- the SSE clients (their own process) ---------------------------------------------------

_POSITION = re.compile(rb'"position": ?(\{[^}]*\})')


async def _client(session: aiohttp.ClientSession, path: str, headers: dict[str, str],
                  until: list[float], out: list[tuple[float, dict[str, int]]],
                  sizes: list[int], first: asyncio.Event) -> None:
    """One EventSource: (receipt time, the view's position) of every event, until
    `until[0]` (set once every client has its first event). Only the `position`
    member is parsed (the first one: it precedes the lists), so 200 clients in one
    process do not each parse every event whole."""
    async with session.get(path, headers=headers) as response:
        position: dict[str, int] = {}
        async for raw in response.content:
            if raw.startswith(b"data: "):
                received = time.time()
                sizes.append(len(raw))
                found = _POSITION.search(raw)
                if found:
                    moved = json.loads(found.group(1))
                    position = {**position, **{k: v for k, v in moved.items() if v is not None}}
                out.append((received, dict(position)))
                first.set()
            if time.time() > until[0]:
                return


async def _clients(spec: dict[str, Any]) -> dict[str, Any]:
    """The clients; once each has its first event (the snapshot), `spec["ready"]` is
    written and they read for `spec["seconds"]` more. The load waits for that file:
    this process's start (its imports: 8-12 s on the loaded machine, more beside the
    Kafka deployment's processes) must not count as delivery latency."""
    until = [float("inf")]
    connector = aiohttp.TCPConnector(limit=spec["clients"] + 4)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    outs: list[list[tuple[float, dict[str, int]]]] = [[] for _ in range(spec["clients"])]
    sizes: list[int] = []
    headers = {"Authorization": f"Bearer {spec['key']}"}
    async with aiohttp.ClientSession(spec["base_url"], connector=connector,
                                     timeout=timeout) as session:
        firsts = [asyncio.Event() for _ in outs]
        tasks = [asyncio.create_task(_client(session, "/v1/live/stream", headers, until, out,
                                             sizes, first))
                 for out, first in zip(outs, firsts, strict=True)]
        ready = asyncio.gather(*(first.wait() for first in firsts))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready, CONNECT_S)
        until[0] = time.time() + spec["seconds"]
        Path(spec["ready"]).write_text(str(sum(f.is_set() for f in firsts)))
        done, pending = await asyncio.wait(tasks, timeout=spec["seconds"] + 30)
        for task in pending:
            task.cancel()
    failed = sum(1 for t in done if t.exception() is not None)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"events": outs, "failed": failed, "cpu_s": usage.ru_utime + usage.ru_stime,
            "mean_bytes": sum(sizes) / len(sizes) if sizes else 0}


def clients_main() -> None:
    """`python -m bench.live --sse`: spec as JSON on stdin, events as JSON on stdout."""
    spec = json.load(sys.stdin)
    json.dump(uvloop.run(_clients(spec)), sys.stdout)


# --- the load: calls stored through the application service ---------------------------

def store_calls(dsn: str, rate: float, seconds: float, commits: list[tuple[float, int]],
                queues: int = 1, calls: dict[int, UUID] | None = None) -> None:
    """`rate` calls/s for `seconds`, in turn over `queues` queues: enqueue, and abandon
    2 s later; each commit's (time it returned, the store's notification id after it),
    and in `calls` the call of each commit's notification id.
    One queue taking every call reached 37 of the 100 commits/s asked on 2026-12-03
    (14:08), each command then loading its queue from all its events; with the
    service's aggregate cache it reached 96/s on 2026-12-05 (`--queues 1`)."""
    # The only writer of its queues: no copy out of its aggregate cache is needed, and
    # the copies cost it 10 % of its CPU (cProfile), which the event path then lacks.
    env = eventsourcing_env(dsn, DEEPCOPY_FROM_AGGREGATE_CACHE="n")
    with CallCentreService(env=env) as service:
        ids = [service.create_queue(f"live-{uuid4().hex[:6]}", f"Bench live {n}",
                                    "longest_idle", occurred_at=datetime.now(UTC)).id
               for n in range(queues)]
        waiting: list[tuple[float, Any, Any]] = []
        start = time.time()
        total = int(rate * seconds)
        for n in range(total):
            due = start + n / rate
            while waiting and waiting[0][0] <= due:
                _, queue, call = waiting.pop(0)
                service.abandon_call(queue, call, datetime.now(UTC))
                _record(service, commits, calls, call)
            time.sleep(max(0.0, due - time.time()))
            call, queue = uuid4(), ids[n % queues]
            service.enqueue_call(queue, call, 0, datetime.now(UTC))
            _record(service, commits, calls, call)
            waiting.append((due + 2.0, queue, call))


def _record(service: CallCentreService, commits: list[tuple[float, int]],
            calls: dict[int, UUID] | None, call: UUID) -> None:
    """The commit just returned: its time first, then its notification id (a query)."""
    at = time.time()
    position = service.recorder.max_notification_id() or 0
    commits.append((at, position))
    if calls is not None:
        calls[position] = call


def run_clients(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.live", "--sse"],
                          input=json.dumps(spec).encode(), capture_output=True, check=True)
    return dict(json.loads(done.stdout))


def wait_ready(ready: Path, reader: threading.Thread) -> None:
    """Until the clients' process says every client has its first snapshot (bounded)."""
    deadline = time.monotonic() + CONNECT_S + 30
    while not ready.exists():
        if not reader.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the SSE clients did not connect")
        time.sleep(0.05)


def stream_phase(args: argparse.Namespace, dsn: str, base_url: str, key: str,
                 up: psutil.Process, others: dict[str, int]) -> None:
    """`others`: the pids of the other processes on the event path (PostgreSQL; the
    relay, worker and broker in Kafka mode), whose CPU the phase prints apiece."""
    if args.stream_warmup_s > 0:
        # The same load, unmeasured, before the clients connect: a just-started JVM
        # (the broker) and Python processes spend their first seconds compiling and
        # warming caches, which a running deployment has long done.
        store_calls(dsn, args.calls_per_s, args.stream_warmup_s, [], args.queues)
        time.sleep(3)  # the warm-up's last abandons and their projection
        print(f"stream: {args.stream_warmup_s:g} s of the same load before measuring")
    ready = Path(tempfile.mkdtemp(prefix="dialtone-live-clients-")) / "ready"
    spec = {"base_url": base_url, "key": key, "clients": args.clients,
            "seconds": args.stream_s + 6, "ready": str(ready)}
    result: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: result.update(run_clients(spec)))
    waited = time.monotonic()
    reader.start()
    # The load starts once every client is past its first snapshot: before, a
    # fixed 4 s, and a clients' process slower to start (the Kafka deployment's
    # processes starting beside it) had its connection time counted as latency.
    wait_ready(ready, reader)
    print(f"stream: {ready.read_text()}/{args.clients} clients had their first snapshot "
          f"{time.monotonic() - waited:.1f} s after their process started")
    ready.unlink()
    ready.parent.rmdir()
    commits: list[tuple[float, int]] = []
    calls: dict[int, UUID] = {}
    heard: Heard = []
    stop, listening = threading.Event(), threading.Event()
    listener = threading.Thread(target=listen_projected, args=(dsn, stop, heard, listening))
    listener.start()
    if not listening.wait(CONNECT_S):
        raise SystemExit("the benchmark's LISTEN connection did not start")
    bootstrap = os.environ.get("DIALTONE_KAFKA_BOOTSTRAP")  # kafka_pipeline's broker
    # The split costs: its consumer polls the broker 50 times a second in this process.
    marks = KafkaMarks(bootstrap, topic_for("queue")) if bootstrap and args.split else None
    own0 = _own_cpu_s()
    watched = {"up": up, **{name: psutil.Process(pid) for name, pid in others.items()}}
    cpu0, started = {n: bench_api.server_cpu_s(p) for n, p in watched.items()}, time.monotonic()
    store_calls(dsn, args.calls_per_s, args.stream_s, commits, args.queues, calls)
    spent = {n: bench_api.server_cpu_s(p) - cpu0[n] for n, p in watched.items()}
    cpu = spent["up"]
    elapsed = time.monotonic() - started
    reader.join()
    stop.set()
    listener.join()
    projected = match_projected(commits, calls, heard)
    stages = [marks.report(commits, projected)] if marks is not None else []
    latencies = delivery_latencies(commits, result["events"], projected)
    lag = projected_latencies(commits, projected)
    connected = sum(1 for events in result["events"] if events)
    print(f"stream: {connected}/{args.clients} clients connected ({result['failed']} failed), "
          f"{len(commits)} commits in {elapsed:.1f} s ({len(commits) / elapsed:.0f}/s; asked "
          f"{args.calls_per_s:g} calls/s, 2 commits a call: enqueue, abandon), "
          f"{len(latencies)} deliveries measured")
    if lag:
        print(f"  store commit -> projected (its batch's notification heard): p50 "
              f"{percentile_ms(lag, 0.5):.0f} ms, p99 {percentile_ms(lag, 0.99):.0f} ms; "
              f"{len(lag)} of {len(commits)} commits heard projected")
        for line in stages:
            print(line)
    if latencies:
        print(f"  store commit -> SSE delivery: p50 {percentile_ms(latencies, 0.5):.0f} ms, "
              f"p90 {percentile_ms(latencies, 0.9):.0f} ms, "
              f"p99 {percentile_ms(latencies, 0.99):.0f} ms, max {max(latencies) * 1000:.0f} ms")
    events = sum(len(e) for e in result["events"]) / max(1, connected)
    print(f"  events per client: {events:.0f}, {result['mean_bytes'] / 1024:.0f} KiB each on "
          f"average (the first is the whole snapshot); `up` CPU (API, projections, all its "
          f"processes) {cpu / elapsed:.2f} s/s, {cpu / elapsed / args.clients * 1000:.1f} "
          f"ms/s per client; the clients' process {result['cpu_s']:.0f} CPU s in "
          f"{spec['seconds']:.0f} s (its lag counts in the latency)")
    print("  CPU while storing, s/s (with children): " + ", ".join(
        f"{name} {seconds / elapsed:.2f}" for name, seconds in spent.items())
        + f"; this process (the store's writer) {_own_cpu_s() - own0:.0f} s")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the snapshot phase --------------------------------------------------------------------

def snapshot_phase(args: argparse.Namespace, base_url: str, key: str, up_pid: int,
                   pg_pid: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    shot = {"label": "GET /v1/live  key", "path": "/v1/live", "headers": headers}
    spec = {"base_url": base_url, "rate": args.rate, "seconds": args.seconds,
            "warmup": args.warmup, "connections": args.connections, "shots": [shot]}
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        body = client.get("/v1/live", headers=headers)
        body.raise_for_status()
        live = body.json()
    print(f"snapshot: {len(live['queues'])} queues, {len(live['agents'])} agents, "
          f"{len(body.content) / 1024:.0f} KiB a body; {args.rate:g} requests/s for "
          f"{args.seconds:g} s after {args.warmup:g} s of warm-up")
    bench_api.measure(args, spec, up_pid, pg_pid)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="dialtone live view benchmark")
    parser.add_argument("--calls", type=int, default=3000, help="the tenant's calls today")
    parser.add_argument("--clients", type=int, default=200, help="SSE clients")
    parser.add_argument("--calls-per-s", type=float, default=50)
    parser.add_argument("--queues", type=int, default=1,
                        help="queues the stored calls go to in turn (one: the figures "
                        "before 2026-12-03 14:30; more: the producer keeps its rate)")
    parser.add_argument("--stream-s", type=float, default=30)
    parser.add_argument("--stream-warmup-s", type=float, default=0,
                        help="store calls at the same rate this long before measuring")
    parser.add_argument("--rate", type=float, default=200, help="GET /v1/live per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip", choices=("stream", "snapshot"), action="append", default=[])
    parser.add_argument("--kafka", action="store_true",
                        help="the Kafka deployment: an embedded broker, `dialtone relay` and "
                        "`dialtone worker` (Faust) project instead of `up`'s runners")
    parser.add_argument("--split", action="store_true",
                        help="with --kafka: also split store -> projected at Kafka (a "
                        "consumer of the queue topic in this process, which costs CPU)")
    parser.add_argument("--sse", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.sse:
        clients_main()
        return
    print(machine_facts())
    with embedded_postgres() as pg, tempfile.TemporaryDirectory(prefix="dialtone-live-") \
            as tmp:
        data_dir, port = Path(tmp), free_port()
        dsn = pg.dsn("bench_live")
        ensure_database(dsn)
        apply_migrations(dsn)
        load_tenant(dsn, args.calls)
        ensure_initial_admin(dsn, data_dir)
        key = issue_api_key(dsn, "bench", Role.SUPERVISOR)
        with contextlib.ExitStack() as stack:
            feeders = stack.enter_context(kafka_pipeline(dsn, data_dir)) if args.kafka else {}
            with running_up(dsn, data_dir, port, ["--api-workers", "1"]) as up:
                base_url = f"http://127.0.0.1:{port}"
                mode = ("Kafka: relay + Faust worker project, embedded broker" if args.kafka
                        else "embedded: in-process projections")
                print(f"dialtone up ({mode}; 1 API process, no B2BUA worker); tenant: "
                      f"{QUEUES} queues, {AGENTS} agents, {args.calls} calls today")
                if "stream" not in args.skip:
                    pids = {"postgres": pg.pid() or 0, **feeders}
                    stream_phase(args, dsn, base_url, key, psutil.Process(up.pid), pids)
                if "snapshot" not in args.skip:
                    snapshot_phase(args, base_url, key, up.pid, pg.pid() or 0)
            print(*reads_told(data_dir / "up.log")[-1:])
            print(f"projection_positions: {position_rows(dsn)}")
    print(f"\nafter: {machine_facts()}")


if __name__ == "__main__":
    main()
