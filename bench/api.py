"""API benchmark: the main read routes at a fixed request rate, from another process.

Run: .venv/bin/python -m bench.api   (about 1 minute; starts its own embedded
PostgreSQL and `dialtone up` on it as a real process)

Seeds calls, CDRs, agents and a queue, logs in (an access token from
POST /v1/auth/token) and makes an API key, then drives GET /v1/calls,
/v1/calls/{id}, /v1/cdrs, /v1/agents, /v1/queues/{key}/live, /healthz and
/readyz in round robin at `--rate` requests/s for `--seconds`, and prints per
route p50/p90/p99/max and the rate achieved. The same GET goes out with a token
and with an API key (and /healthz, which is open, without and with a token), so
the cost of authentication shows in the same run.

The load generator (bench/load_generator.py) runs in a process of its own:
asyncio on uvloop with aiohttp's client. It is open-loop: request n is due at
start + n / rate whatever the answers before it did, and its latency counts
from that due time, not from when it was sent (a stalled server is charged for
every request it held up: no coordinated omission). wrk (Debian's 4.1) is
closed-loop and has no fixed-rate mode; wrk2 is not packaged. The generator
prints its own CPU use and how late it sent, so it can be seen not to be the
bottleneck.
Target (issue 9): p99 < 50 ms at 500 requests/s; authentication adds < 1 ms p99.

`--api-workers N` runs `up --api-workers N` (N API processes on the port);
`--priority -10` (root) raises this session's CPU weight for the measured part
(see `session_priority`: on a shared machine the tail is the API waiting for
its share of a CPU). It also counts full garbage collections in an API process
(/metrics) and, per API loop, the time it waited for a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx2
import psutil

from api.auth.authenticator import Authenticator
from api.db import open_pool
from application.calls import CallService
from application.identity.model import Role
from application.identity.settings import AuthSettings
from bench.common import embedded_postgres, machine_facts, percentile_ms, wait
from bench.load_generator import run_driver
from bench.up import running_up
from devtools.simulate import lifecycles
from dialtone.commands.users import ensure_initial_admin, issue_api_key
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from domain.call import Direction

QUEUE = "sales"


# --- the platform under test ---------------------------------------------------------------

def seed_calls(dsn: str, ended: int, live: int) -> UUID:
    """`ended` complete calls (CDRs) and `live` answered calls still in progress;
    returns one ended call's id (for GET /v1/calls/{id})."""
    service = CallService(env=eventsourcing_env(dsn))
    ids = lifecycles(service, ended, "bench-api")
    with service.batch():
        for n in range(live):
            call_id = service.initiate_call(
                caller=f"+1555010{n:04d}", callee="+15550199", direction=Direction.INBOUND,
                trunk="pstn-1", sip_call_id=f"bench-api-live-{n}@sim",
                occurred_at=datetime.now(UTC))
            service.answer_call(call_id, datetime.now(UTC))
    return ids[len(ids) // 2]


AUTOGROUP = Path("/proc/self/autogroup")


@contextlib.contextmanager
def session_priority(priority: int | None) -> Iterator[None]:
    """Run the block with this session's CPU weight set to nice `priority`.

    Linux (sched_autogroup_enabled=1, as here) shares the CPUs fairly between
    sessions first, and only then between the processes of a session: a nice value
    or more API processes inside the benchmark's session do not change its share of
    a busy machine. The autogroup's nice value does (below 0 needs root); it is
    what a deployment's CPU request is (cgroup cpu.weight). `up`, PostgreSQL and
    the load generator are all in this session."""
    if priority is None:
        yield
        return
    before = AUTOGROUP.read_text().split()[-1]
    AUTOGROUP.write_text(str(priority))
    try:
        yield
    finally:
        AUTOGROUP.write_text(before)


def seed_callcentre(client: httpx2.Client, key: str, agents: int) -> None:
    """`agents` agents, all members of queue `sales`, through the API (projected by up)."""
    auth = {"Authorization": f"Bearer {key}"}
    client.post("/v1/queues", json={"key": QUEUE, "name": "Sales"},
                headers=auth).raise_for_status()
    for n in range(agents):
        client.post("/v1/agents", json={"key": f"agent-{n}", "name": f"Agent {n}"},
                    headers=auth).raise_for_status()
        client.put(f"/v1/queues/{QUEUE}/members/agent-{n}", json={"penalty": n % 3},
                   headers=auth).raise_for_status()

    def projected() -> bool:
        page = client.get("/v1/agents", headers=auth).json()
        return len(page["data"]) >= agents

    wait(projected, 60, "the agents in the projections")


def login(client: httpx2.Client, password: str) -> str:
    answer = client.post("/v1/auth/token", data={"username": "admin", "password": password})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def shots(call_id: UUID, token: str, key: str) -> list[dict[str, Any]]:
    """The round robin: every main read route with a token; the same GET with a key
    (authentication compared) and /healthz without credentials and with a token."""
    by_token = {"Authorization": f"Bearer {token}"}
    by_key = {"Authorization": f"Bearer {key}"}
    routes = [
        ("GET /v1/calls", "/v1/calls"),
        ("GET /v1/calls/{id}", f"/v1/calls/{call_id}"),
        ("GET /v1/cdrs", "/v1/cdrs?limit=50"),
        ("GET /v1/agents", "/v1/agents"),
        (f"GET /v1/queues/{QUEUE}/live", f"/v1/queues/{QUEUE}/live"),
    ]
    mix = [{"label": f"{label}  token", "path": path, "headers": by_token}
           for label, path in routes]
    mix += [
        {"label": "GET /v1/calls/{id}  key", "path": f"/v1/calls/{call_id}", "headers": by_key},
        {"label": "GET /v1/agents  key", "path": "/v1/agents", "headers": by_key},
        {"label": "GET /healthz  none", "path": "/healthz", "headers": {}},
        {"label": "GET /healthz  token", "path": "/healthz", "headers": by_token},
        {"label": "GET /readyz  none", "path": "/readyz", "headers": {}},
    ]
    return mix


def server_cpu_s(process: psutil.Process) -> float:
    """CPU seconds of `process` and its children (`dialtone up`'s API workers; the
    PostgreSQL backends)."""
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def authentication_cost(dsn: str, credentials: dict[str, str], rounds: int = 3000,
                        ) -> dict[str, list[float]]:
    """Seconds per `Authenticator.authenticate` (what `require` does per request), in
    this process against the same database, state cache warm as under load."""
    async def measure() -> dict[str, list[float]]:
        async with open_pool(dsn, 2) as pool:
            auth = Authenticator(AuthSettings())
            times: dict[str, list[float]] = {}
            for name, credential in credentials.items():
                await auth.authenticate(pool, credential)  # fills the cache
                samples = times[name] = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await auth.authenticate(pool, credential)
                    samples.append(time.perf_counter() - started)
            return times

    return asyncio.run(measure())


def runqueue_wait_s(pid: int) -> float:
    """Seconds the thread `pid` (a process's main thread: the API's event loop) has
    spent runnable but waiting for a CPU (/proc/<pid>/schedstat, second field): the
    share of the machine other work took from it; NaN once the process is gone (an
    API worker replaced during the run)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def api_loops(up_pid: int) -> list[int]:
    """The pids whose main thread runs an API event loop: `up` itself, or with
    `--api-workers N` its N spawned API worker processes."""
    spawned = [p.pid for p in psutil.Process(up_pid).children()
               if "spawn_main" in " ".join(p.cmdline())]
    return spawned or [up_pid]


# --- the report ---------------------------------------------------------------------------

def report(result: dict[str, Any], spec: dict[str, Any], cpu_per_request_s: list[float],
           ) -> None:
    samples: dict[str, list[list[float]]] = result["samples"]
    wall = result["wall_s"]
    print(f"\n{'route  credential':<38} {'n':>6} {'req/s':>7} {'p50':>7} {'p90':>7} "
          f"{'p99':>7} {'max':>7}  errors")
    print("-" * 92)
    for shot in spec["shots"]:
        rows = samples.get(shot["label"], [])
        latencies = [r[0] for r in rows]
        errors = sum(1 for r in rows if not 200 <= r[2] < 300)
        print(f"{shot['label']:<38} {len(rows):>6} {len(rows) / wall:>7.1f} "
              f"{percentile_ms(latencies, 0.5):>7.1f} {percentile_ms(latencies, 0.9):>7.1f} "
              f"{percentile_ms(latencies, 0.99):>7.1f} {max(latencies) * 1000:>7.1f}  {errors}")
    every = [r for rows in samples.values() for r in rows]
    latencies = [r[0] for r in every]
    print("-" * 92)
    print(f"{'all':<38} {len(every):>6} {len(every) / wall:>7.1f} "
          f"{percentile_ms(latencies, 0.5):>7.1f} {percentile_ms(latencies, 0.9):>7.1f} "
          f"{percentile_ms(latencies, 0.99):>7.1f} {max(latencies) * 1000:>7.1f}")
    late = [r[1] for r in every]
    print(f"\nms from the due time to the answer (open loop, {spec['rate']} req/s offered); "
          f"send lateness p99 {percentile_ms(late, 0.99):.1f} ms")
    up_cpu, pg_cpu = cpu_per_request_s
    print(f"CPU per request (warm-up included): dialtone up {up_cpu * 1000:.2f} ms, "
          f"PostgreSQL {pg_cpu * 1000:.2f} ms; load generator "
          f"{result['generator_cpu_s'] / len(every) * 1000:.2f} ms "
          f"({result['generator_cpu_s'] / wall:.2f} of a core)")
    auth_lines(samples)


def auth_lines(samples: dict[str, list[list[float]]]) -> None:
    def p99(label: str) -> float:
        return percentile_ms([r[0] for r in samples.get(label, [])], 0.99)

    pairs = [("GET /v1/calls/{id}", "token", "key"), ("GET /v1/agents", "token", "key"),
             ("GET /healthz", "token", "none")]
    # Only the pairs this run drove both sides of (bench.live drives one shot).
    driven = [(route, a, b) for route, a, b in pairs
              if samples.get(f"{route}  {a}") and samples.get(f"{route}  {b}")]
    if not driven:
        return
    print("authentication: same GET, p99 difference over HTTP (noise: a few ms):")
    for route, a, b in driven:
        print(f"  {route}: {a} - {b} = {p99(f'{route}  {a}') - p99(f'{route}  {b}'):+.1f} ms")


def full_collections(base_url: str) -> float:
    """Full (generation 2) garbage collections so far in the API process that answers
    (prometheus-client's `python_gc_collections_total`; with several API workers, one
    of them)."""
    text = httpx2.get(f"{base_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('python_gc_collections_total{generation="2"}'):
            return float(line.split()[-1])
    return float("nan")


def measure(args: argparse.Namespace, spec: dict[str, Any], up_pid: int, pg_pid: int) -> None:
    """Drive the load and print the table, CPU per request, the loop's wait for a CPU."""
    servers = [psutil.Process(up_pid), psutil.Process(pg_pid)]
    collections0 = full_collections(spec["base_url"])
    cpu0 = [server_cpu_s(p) for p in servers]
    loops = api_loops(up_pid)
    waited0, started = [runqueue_wait_s(pid) for pid in loops], time.monotonic()
    result = run_driver(spec)
    elapsed = time.monotonic() - started
    waited = sum(runqueue_wait_s(pid) - w for pid, w in zip(loops, waited0, strict=True)) / (
        len(loops) * elapsed)
    # Nothing else asks `up` or PostgreSQL for anything meanwhile: their CPU is the requests'.
    sent = args.rate * (args.warmup + args.seconds)
    report(result, spec, [(server_cpu_s(p) - c) / sent for p, c in zip(servers, cpu0,
                                                                        strict=True)])
    print(f"the API's event loop{'s' if len(loops) > 1 else ''} ({len(loops)}) waited for a "
          f"CPU {waited:.0%} of the run (runnable, not running: the machine's other work; "
          "mean per loop)")
    print(f"full garbage collections in an API process during the run: "
          f"{full_collections(spec['base_url']) - collections0:.0f}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="dialtone API read-route benchmark")
    parser.add_argument("--rate", type=float, default=500, help="requests/s offered")
    parser.add_argument("--seconds", type=float, default=30, help="measured duration")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=64,
                        help="the generator's connection limit (requests beyond wait)")
    parser.add_argument("--calls", type=int, default=400, help="ended calls (CDRs)")
    parser.add_argument("--live", type=int, default=20, help="calls in progress")
    parser.add_argument("--agents", type=int, default=40, help="agents, all in one queue")
    parser.add_argument("--api-workers", type=int, default=1,
                        help="`dialtone up --api-workers`: API processes sharing the port")
    parser.add_argument("--priority", type=int, default=None,
                        help="nice value of this session's autogroup (up, PostgreSQL and "
                        "the generator), e.g. -10 as root: the CPU share a deployment "
                        "reserves for the API")
    parser.add_argument("--up-arg", action="append", default=[],
                        help="extra argument for `dialtone up` (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(machine_facts())
    with embedded_postgres() as pg, tempfile.TemporaryDirectory(prefix="dialtone-bench-api-") \
            as tmp:
        data_dir, port = Path(tmp), free_port()
        dsn = pg.dsn("bench_api")
        ensure_database(dsn)
        apply_migrations(dsn)
        call_id = seed_calls(dsn, args.calls, args.live)
        password = ensure_initial_admin(dsn, data_dir)
        assert password is not None  # a fresh database
        key = issue_api_key(dsn, "bench", Role.ADMIN)
        up_args = ["--api-workers", str(args.api_workers), *args.up_arg]
        with running_up(dsn, data_dir, port, up_args, ready_within_s=60) as up:
            base_url = f"http://127.0.0.1:{port}"
            with httpx2.Client(base_url=base_url, timeout=10) as client:
                seed_callcentre(client, key, args.agents)
                token = login(client, password)
            spec = {"base_url": base_url, "rate": args.rate, "seconds": args.seconds,
                    "warmup": args.warmup, "connections": args.connections,
                    "shots": shots(call_id, token, key)}
            print(f"dialtone up {' '.join(up_args)} (no B2BUA worker, session CPU weight: "
                  f"nice {args.priority or 0}); "
                  f"{args.calls} CDRs, "
                  f"{args.live} live calls, {args.agents} agents in queue {QUEUE}")
            with session_priority(args.priority):
                measure(args, spec, up.pid, pg.pid() or 0)
                for name, samples in authentication_cost(
                        dsn, {"token": token, "API key": key}).items():
                    print(f"  authenticate() alone, {name}: p50 "
                          f"{percentile_ms(samples, 0.5):.3f} ms, p99 "
                          f"{percentile_ms(samples, 0.99):.3f} ms (in-process, cache warm)")
    print(f"\nafter: {machine_facts()}")


if __name__ == "__main__":
    main()
