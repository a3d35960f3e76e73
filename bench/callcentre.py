"""The call centre on the wire under steady load (a benchmark, not a test).

    .venv/bin/python -m bench.callcentre                      # 10 workers x 2 calls, 60 s
    .venv/bin/python -m bench.callcentre --workers 50 --talk 30 --duration 90
    .venv/bin/python -m bench.callcentre --workers 50 --pool    # one forked pool of 50

What runs (all on loopback, real processes): an embedded PostgreSQL, the routing
process (``dialtone router``), ``--workers`` B2BUA workers (``dialtone b2bua
--max-calls N``: the pjsua2 wheel holds 4 legs per process, so 2 bridged calls),
one sipp UAS playing every agent (each agent's device URI points at it: it rings
``--ring-ms``, answers and echoes RTP back), and one sipp caller per worker
(``-l`` calls at a time, streaming G.711 audio, staying ``--talk`` seconds).
There are more agents than callers, so every caller enters a queue with a free
agent.

Figures, over the steady window (after ``--warmup``), from the stored events:
- offer latency: ``Queue.CallEnqueued`` (the worker puts the caller in the
  queue) to ``Call.Ringing`` (the agent's 180 reached the worker), split at
  ``Agent.Reserved`` (the routing process's decision committed);
- calls answered per second, concurrent bridged calls (time-averaged);
- CPU: each process group's CPU seconds per wall second (from /proc), and the
  workers' CPU per bridged call;
- memory: the workers' summed PSS (``/proc/<pid>/smaps_rollup``: shared pages
  divided between the processes that share them) beside their RSS, in the middle
  of the window, per worker and per concurrent bridged call. ``--pool`` starts
  the workers as one ``dialtone b2bua --workers N`` (forked from one parent that
  has imported everything, sharing its pages; the parent counts in the PSS)
  instead of N separate processes.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from application.callcentre import CallCentreService
from application.calls import CallService
from bench.acd import commit_times
from bench.common import machine_facts, percentile_ms
from bench.memory import group_memory, with_children
from bench.sip_stack import (
    Stack,
    Workers,
    free_udp,
    mulaw_wav,
    start_database,
    start_pool,
    start_workers,
    workdir,
)
from dialtone.database import eventsourcing_env
from dialtone.services.postgres import EmbeddedPostgres
from domain.addressing import Target
from domain.agent import Agent
from domain.call import Call
from domain.queue import Queue

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = Path(__file__).resolve().parent / "sipp"
DIALTONE = Path(sys.executable).parent / "dialtone"
DID = "7000"
RTP_BASE = 12000
START_BATCH = 4  # workers starting at once (~1.5 s of CPU each)
CPUS = os.cpu_count() or 1


@dataclass(frozen=True)
class Load:
    workers: int
    calls_per_worker: int
    talk_s: float
    duration_s: float
    warmup_s: float
    ring_ms: int
    agents: int
    keep: bool
    pool: bool = False


def provision(dsn: str, load: Load, agent_port: int) -> None:
    CallService(env=eventsourcing_env(dsn)).close()  # create the call store's tables once
    at = datetime.now(UTC)
    with CallCentreService(env=eventsourcing_env(dsn)) as service:
        queue = service.create_queue("bench", "Bench", "longest_idle", occurred_at=at,
                                     offer_timeout_s=15.0)
        for n in range(load.agents):
            agent = service.create_agent(f"a{n}", f"Agent {n}", occurred_at=at)
            service.add_member(queue.id, agent.id, 0, at)
            service.login(agent.id, f"sip:a{n}@127.0.0.1:{agent_port}", at)
        service.create_number(DID, Target.queue(queue.id), occurred_at=at)


def render(name: str, work: Path, **values: str) -> Path:
    text = (SCENARIOS / name).read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    path = work / name
    path.write_text(text)
    return path


def start(stack: Stack, dsn: str, load: Load) -> list[tuple[int, int]]:
    """The workers: (port, pid) each; a pool's parent first, with port 0 (its memory
    counts; it takes no call)."""
    workers = Workers(load.workers, load.calls_per_worker, RTP_BASE,
                      args=("--pj-log-level", "1"), start_batch=START_BATCH)
    if not load.pool:
        return [(port, proc.pid) for port, proc in start_workers(stack, workers, dsn)]
    first, parent = start_pool(stack, workers, dsn)
    pids = with_children(parent.pid)
    return [(0, pids[0]), *zip(range(first, first + load.workers), pids[1:], strict=True)]


# -- CPU ---------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def postgres_pids(server: EmbeddedPostgres) -> list[int]:
    pid = server.pid() or 0
    return [pid, *children_of(pid)]


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# -- figures from the event store -----------------------------------------------------------------


@dataclass
class CallFacts:
    enqueued: datetime | None = None  # the worker decided (occurred_at)
    enqueue_committed: float | None = None  # epoch seconds, from the server
    reserved: datetime | None = None  # the routing process decided
    reserve_committed: float | None = None
    ringing: datetime | None = None  # the agent's 180 reached the worker
    answered: datetime | None = None
    ended: datetime | None = None




def read_facts(dsn: str) -> dict[UUID, CallFacts]:
    facts: dict[UUID, CallFacts] = {}
    with CallService(env=eventsourcing_env(dsn)) as calls:
        for _, event in _events(calls):
            fact = facts.setdefault(event.originator_id, CallFacts())
            if isinstance(event, Call.Ringing):
                fact.ringing = fact.ringing or event.occurred_at
            elif isinstance(event, Call.Answered):
                fact.answered = event.occurred_at
            elif isinstance(event, Call.Ended):
                fact.ended = event.occurred_at
    commits = commit_times(dsn)
    with CallCentreService(env=eventsourcing_env(dsn)) as centre:
        for position, event in _events(centre):
            if isinstance(event, Queue.CallEnqueued):
                fact = facts.setdefault(event.call_id, CallFacts())
                fact.enqueued, fact.enqueue_committed = event.occurred_at, commits.get(position)
            elif isinstance(event, Agent.Reserved):
                fact = facts.setdefault(event.call_id, CallFacts())
                if fact.reserved is None:
                    fact.reserved, fact.reserve_committed = event.occurred_at, commits.get(position)
    return facts


def _events(app: Any) -> Iterator[tuple[int, Any]]:
    start = 1
    while page := app.recorder.select_notifications(start, 5000):
        for notification in page:
            yield notification.id, app.mapper.to_domain_event(notification)
        start = page[-1].id + 1


def describe(name: str, samples: list[float]) -> str:
    if not samples:
        return f"  {name}: no samples"
    return (f"  {name}: n={len(samples)}  p50 {percentile_ms(samples, 0.5):.1f} ms  "
            f"p99 {percentile_ms(samples, 0.99):.1f} ms  max {max(samples) * 1000:.1f} ms")


def report(facts: dict[UUID, CallFacts], since: datetime, until: datetime) -> dict[str, float]:
    window = (until - since).total_seconds()
    offered = [f for f in facts.values() if f.enqueued and since <= f.enqueued <= until]
    ring = [(f.ringing - f.enqueued).total_seconds() for f in offered
            if f.ringing and f.enqueued]
    stored = [f.enqueue_committed - f.enqueued.timestamp() for f in offered
              if f.enqueued and f.enqueue_committed]
    decide = [f.reserve_committed - f.enqueue_committed for f in offered
              if f.reserve_committed and f.enqueue_committed]
    dial = [f.ringing.timestamp() - f.reserve_committed for f in offered
            if f.ringing and f.reserve_committed]
    answered = [f for f in facts.values() if f.answered and since <= f.answered <= until]
    bridged = sum(max(0.0, (min(f.ended or until, until) - max(f.answered, since))
                      .total_seconds()) for f in facts.values() if f.answered) / window
    print(describe("offer latency, enqueued -> agent's phone ringing", ring))
    print(describe("  worker: decided -> enqueue committed", stored))
    print(describe("  router: enqueue committed -> reservation committed", decide))
    print(describe("  worker: reservation committed -> agent's 180 received", dial))
    print(f"  calls answered: {len(answered)} in {window:.0f} s = {len(answered) / window:.2f}/s;"
          f"  concurrent bridged calls (time average): {bridged:.1f}")
    return {"bridged": bridged, "answered_per_s": len(answered) / window}


# -- the run -------------------------------------------------------------------------------------


def run(load: Load, work: Path) -> None:
    with Stack(work) as stack:
        # Each worker holds 4 connections (storage, command link, log follower, LISTEN),
        # more in bursts (each pool may open more; 8 a worker ran out at 50 workers).
        # Commit times split the offer latency between the processes.
        connections = max(200, load.workers * 12 + 100)
        dsn, server = start_database(stack, "bench_callcentre", {
            "max_connections": str(connections), "track_commit_timestamp": "on"})
        agent_port = free_udp()
        provision(dsn, load, agent_port)
        env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_LOG_LEVEL": "WARNING"}
        router = stack.process([str(DIALTONE), "router"], "router.log", env)
        agents_scenario = render("uas_agent.xml", work, RING_MS=str(load.ring_ms))
        agents = stack.process([SIPP, "-sf", str(agents_scenario), "-i", "127.0.0.1",
                              "-p", str(agent_port), "-mp", str(free_udp()), "-rtp_echo",
                              "-m", "1000000", "-nostdin", "-trace_err"], "sipp-agents.log")
        workers = start(stack, dsn, load)
        print(f"{load.workers} workers x {load.calls_per_worker} calls, {load.agents} agents, "
              f"talk {load.talk_s:.0f} s, ring {load.ring_ms} ms; {machine_facts()}")
        audio = mulaw_wav(work / "caller.wav")
        caller_scenario = render("uac_queue.xml", work, AUDIO_FILE=str(audio))
        per_worker_rate = load.calls_per_worker / load.talk_s
        calls = max(1, math.ceil(per_worker_rate * (load.duration_s + load.warmup_s)))
        # Callers spread over one call period, so that arrivals are steady rather
        # than one burst per period (a burst is all workers writing the queue at once).
        stagger = 1 / per_worker_rate / load.workers
        callers = []
        for port in (port for port, _ in workers if port):
            callers.append(stack.process(
                [SIPP, "-sf", str(caller_scenario), "-s", DID, "-i", "127.0.0.1",
                 "-p", str(free_udp()), "-mp", str(free_udp()), "-r", f"{per_worker_rate:.4f}",
                 "-rp", "1000", "-l", str(load.calls_per_worker), "-m", str(calls),
                 "-d", str(int(load.talk_s * 1000)), "-nostdin", "-trace_err",
                 f"127.0.0.1:{port}"], f"sipp-caller-{port}.log"))
            time.sleep(stagger)
        time.sleep(load.warmup_s)
        worker_pids = [pid for _, pid in workers]
        groups = {"workers": worker_pids, "router": [router.pid],
                  "postgres": postgres_pids(server),
                  "sipp": [agents.pid, *(c.pid for c in callers)]}
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        busy0, total0 = machine_busy()
        since = datetime.now(UTC)
        time.sleep(load.duration_s / 2)
        memory = group_memory(worker_pids)  # mid-window: the steady load's memory
        time.sleep(load.duration_s / 2)
        until = datetime.now(UTC)
        groups["postgres"] = postgres_pids(server)
        after = {name: cpu_seconds(pids) for name, pids in groups.items()}
        busy1, total1 = machine_busy()
        figures = report(read_facts(dsn), since, until)
        window = (until - since).total_seconds()
        usage = {name: (after[name] - before[name]) / window for name in groups}
        print("  CPU (cores busy): " + ", ".join(f"{k} {v:.2f}" for k, v in usage.items())
              + f"; machine {(busy1 - busy0) / max(1, total1 - total0) * CPUS:.2f} of {CPUS}")
        if figures["bridged"] > 0:
            per_call = usage["workers"] / figures["bridged"] * 1000
            print(f"  workers' CPU per bridged call: {per_call:.1f} ms per second "
                  f"({per_call / 10:.2f}% of a core)")
        print(f"  workers' memory{' (pool, its parent included)' if load.pool else ''}: "
              f"{memory.describe(load.workers, figures['bridged'])}")
        print(f"  after: {machine_facts()}")


def parse_args(argv: list[str] | None) -> Load:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=10)
    p.add_argument("--calls-per-worker", type=int, default=2, choices=(1, 2))
    p.add_argument("--talk", type=float, default=20.0, help="seconds per call (after answer)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--ring-ms", type=int, default=200)
    p.add_argument("--agents", type=int, default=0, help="default: 1.5 x the concurrent calls")
    p.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    p.add_argument("--pool", action="store_true",
                   help="the workers as one `dialtone b2bua --workers N` (forked from one parent)")
    a = p.parse_args(argv)
    agents = a.agents or math.ceil(a.workers * a.calls_per_worker * 1.5) + 2
    return Load(a.workers, a.calls_per_worker, a.talk, a.duration, a.warmup, a.ring_ms, agents,
                a.keep, a.pool)


def main(argv: list[str] | None = None) -> None:
    load = parse_args(argv)
    with workdir("dialtone-bench-cc-", load.keep) as work:
        run(load, work)


if __name__ == "__main__":
    main()
