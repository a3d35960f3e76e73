"""Event-store append benchmark: dialtone's CallService against naive
eventsourcing saves and a raw psycopg INSERT ceiling, on one embedded
PostgreSQL server with ``synchronous_commit = on`` (the default).

Run: ``.venv/bin/python -m bench.event_store`` (about 45 s; see bench/README.md).

Rows: dialtone as worker threads sharing one service, then as worker
processes with a service each (``--processes``, 0 skips it), naive
eventsourcing, raw INSERT with one commit per event, raw INSERT batched.

"Append latency" is the wall time of the call that makes events durable:
the batch commit (dialtone rows), the command call that loads, decides and
saves (naive row), the INSERT + COMMIT (raw rows).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any
from uuid import UUID

import psycopg

from application.calls import CallService
from bench.common import embedded_postgres, machine_facts
from dialtone.database import ensure_database, eventsourcing_env
from domain.call import Direction, Disposition, HangupSide, TransferKind

EVENTS_PER_CALL = 8


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    latencies: list[float]  # seconds, one per durable append

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Slot:
    """One call in flight on a worker: its Call-ID stem and lifecycle step."""

    stem: str
    step: int = 0
    serial: int = 0
    call_id: UUID | None = None


# Steps 1..7 of a call's lifecycle; step 0 is initiate.
STEPS: list[Callable[[CallService, UUID, datetime], None]] = [
    lambda s, c, now: s.route_call(c, "agent-1", now),
    lambda s, c, now: s.ring_call(c, now),
    lambda s, c, now: s.answer_call(c, now),
    lambda s, c, now: s.hold_call(c, now),
    lambda s, c, now: s.resume_call(c, now),
    lambda s, c, now: s.transfer_call(c, TransferKind.BLIND, "queue-sales", now),
    lambda s, c, now: s.end_call(c, disposition=Disposition.ANSWERED,
                                 hangup_cause="normal_clearing", hangup_side=HangupSide.CALLER,
                                 sip_status=None, occurred_at=now),
]


def advance(service: CallService, slot: Slot, now: datetime) -> None:
    """Issue the slot's next protocol fact: one event."""
    if slot.step == 0:
        slot.serial += 1
        slot.call_id = service.initiate_call(
            caller="+15551230001", callee="2001", direction=Direction.INBOUND,
            trunk="carrier-a", sip_call_id=f"{slot.stem}-{slot.serial}@bench", occurred_at=now)
    else:
        assert slot.call_id is not None
        STEPS[slot.step - 1](service, slot.call_id, now)
    slot.step = (slot.step + 1) % EVENTS_PER_CALL


@dataclass
class WorkerLog:
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    error: BaseException | None = None


def sip_worker(
    service: CallService, name: str, calls: int, deadline: float, log: WorkerLog
) -> None:
    """A SIP worker: each round advances every call it carries by one fact
    and commits the round as one batch. Slots start staggered so that a
    round mixes initiates, answers, ends, ..."""
    slots = [Slot(f"{name}-{n}") for n in range(calls)]
    for n, slot in enumerate(slots):
        slot.step = -(n % EVENTS_PER_CALL)  # negative: idle rounds before the first INVITE
    try:
        while time.monotonic() < deadline:
            with service.batch() as batch:
                now = datetime.now(UTC)
                for slot in slots:
                    if slot.step < 0:
                        slot.step += 1
                    else:
                        advance(service, slot, now)
                events = batch.pending_event_count
                started = time.perf_counter()
            log.latencies.append(time.perf_counter() - started)
            log.events += events
    except BaseException as exc:  # re-raised by the main thread
        log.error = exc


def bench_dialtone(dsn: str, workers: int, calls: int, seconds: float) -> Result:
    env = eventsourcing_env(dsn, POSTGRES_POOL_SIZE=str(workers), POSTGRES_MAX_OVERFLOW="2")
    with CallService(env=env) as service:
        logs = [WorkerLog() for _ in range(workers)]
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=sip_worker,
                                    args=(service, f"w{n}", calls, deadline, log))
                   for n, log in enumerate(logs)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 60)
        elapsed = time.monotonic() - began
    for log in logs:
        if log.error is not None:
            raise log.error
    return Result(f"dialtone CallService: cache + group commit, {workers} workers x {calls} calls",
                  sum(log.events for log in logs), elapsed,
                  [lat for log in logs for lat in log.latencies])


def process_worker(
    dsn: str, name: str, calls: int, start: float, seconds: float, switch_interval: float
) -> tuple[int, list[float], float]:
    """One SIP worker process with its own CallService (as in production, where
    each B2BUA worker is a process), starting at the shared monotonic `start`.
    Returns its events, append latencies and when its last batch committed."""
    sys.setswitchinterval(switch_interval)
    env = eventsourcing_env(dsn, POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="1",
                            CREATE_TABLE="n")
    with CallService(env=env) as service:
        log = WorkerLog()
        time.sleep(max(0.0, start - time.monotonic()))
        sip_worker(service, name, calls, start + seconds, log)
        finished = time.monotonic()
    if log.error is not None:
        raise log.error
    return log.events, log.latencies, finished


def bench_processes(
    dsn: str, processes: int, calls: int, seconds: float, switch_interval: float
) -> Result:
    CallService(env=eventsourcing_env(dsn)).close()  # creates the table once
    start = time.monotonic() + 3.0  # after every process has connected
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(process_worker, dsn, f"p{n}", calls, start, seconds,
                               switch_interval) for n in range(processes)]
        outcomes = [future.result(timeout=seconds + 60) for future in futures]
    return Result(f"dialtone CallService: same, {processes} worker processes x {calls} calls",
                  sum(events for events, _, _ in outcomes),
                  max(finished for _, _, finished in outcomes) - start,
                  [lat for _, latencies, _ in outcomes for lat in latencies])


def bench_naive(dsn: str, seconds: float) -> Result:
    """The same commands, each loading its call from the store and saving alone."""
    env = eventsourcing_env(dsn, AGGREGATE_CACHE_MAXSIZE="")
    latencies: list[float] = []
    slot = Slot("naive")
    with CallService(env=env) as service:
        assert service.repository.cache is None
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            started = time.perf_counter()
            advance(service, slot, datetime.now(UTC))
            latencies.append(time.perf_counter() - started)
        elapsed = time.monotonic() - began
    return Result("eventsourcing naive: no cache, one save per event", len(latencies), elapsed,
                  latencies)


RAW_TABLE = """
CREATE TABLE raw_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX raw_events_notification_id ON raw_events (notification_id);
"""
RAW_INSERT = ("INSERT INTO raw_events (originator_id, originator_version, topic, state) "
              "VALUES (%s, %s, %s, %s)")


def sample_events(dsn: str) -> list[tuple[str, bytes]]:
    """Real (topic, state) pairs from row 1's store, so rows 3-4 write the same bytes."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT topic, state FROM callservice_events "
                            "ORDER BY notification_id LIMIT 64").fetchall()
    return [(topic, bytes(state)) for topic, state in rows]


def bench_raw(
    dsn: str, samples: list[tuple[str, bytes]], per_commit: int, seconds: float
) -> Result:
    latencies: list[float] = []
    events = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        with contextlib.suppress(psycopg.errors.DuplicateTable):
            conn.execute(RAW_TABLE)
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            rows = [raw_row(events + n, samples) for n in range(per_commit)]
            started = time.perf_counter()
            if per_commit == 1:
                conn.execute(RAW_INSERT, rows[0], prepare=True)
            else:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(RAW_INSERT, rows)
            latencies.append(time.perf_counter() - started)
            events += per_commit
        elapsed = time.monotonic() - began
    name = ("raw psycopg INSERT, one commit per event" if per_commit == 1
            else f"raw psycopg INSERT, {per_commit} events per commit")
    return Result(name, events, elapsed, latencies)


_raw_ids: list[UUID] = []


def raw_row(n: int, samples: list[tuple[str, bytes]]) -> tuple[Any, ...]:
    if n % EVENTS_PER_CALL == 0:
        _raw_ids.append(uuid.uuid4())
    topic, state = samples[n % len(samples)]
    return (_raw_ids[-1], n % EVENTS_PER_CALL + 1, topic, state)


def server_facts(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    assert version is not None
    assert sync is not None
    assert fsync is not None
    return f"PostgreSQL {version[0]}, synchronous_commit={sync[0]}, fsync={fsync[0]}"


def print_table(results: list[Result]) -> None:
    header = (f"{'row':<62} {'events':>8} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'ev/append':>9}")
    print(header)
    print("-" * len(header))
    for result in results:
        if not result.latencies:  # a machine too busy for one durable append in the row
            print(f"{result.name:<62} {result.events:>8} {'-':>9} {'-':>7} {'-':>7} {'-':>9}"
                  f"  (nothing stored in {result.seconds:.1f} s)")
            continue
        per_append = result.events / len(result.latencies)
        print(f"{result.name:<62} {result.events:>8} {result.rate:>9.0f} "
              f"{result.percentile_ms(0.50):>7.2f} {result.percentile_ms(0.99):>7.2f} "
              f"{per_append:>9.1f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="SIP worker threads (row 1)")
    parser.add_argument("--calls", type=int, default=32,
                        help="calls in flight per worker = events per batch (row 1)")
    parser.add_argument("--processes", type=int, default=2,
                        help="also run the workers as processes (row 1b); 0 skips it")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each row")
    parser.add_argument("--switch-interval", type=float, default=0.001,
                        help="sys.setswitchinterval for the worker threads")
    parser.add_argument("--raw-batch", type=int, default=32, help="events per commit (row 4)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Hand the GIL over within 1 ms instead of 5 ms, so a worker whose commit
    # returned is not left waiting behind another worker's Python code.
    sys.setswitchinterval(args.switch_interval)
    with embedded_postgres() as server:
        dsns = {name: server.dsn(f"bench_{name}")
                for name in ("dialtone", "processes", "naive", "raw")}
        for dsn in dsns.values():
            ensure_database(dsn)
        print(server_facts(dsns["dialtone"]))
        print(machine_facts())
        print(f"{args.seconds:.0f} s per row; one call = {EVENTS_PER_CALL} events "
              "(initiate route ring answer hold resume transfer end)\n")
        results = [bench_dialtone(dsns["dialtone"], args.workers, args.calls, args.seconds)]
        if args.processes:
            results.append(bench_processes(dsns["processes"], args.processes, args.calls,
                                           args.seconds, args.switch_interval))
        results.append(bench_naive(dsns["naive"], args.seconds))
        samples = sample_events(dsns["dialtone"])
        results.append(bench_raw(dsns["raw"], samples, 1, args.seconds))
        results.append(bench_raw(dsns["raw"], samples, args.raw_batch, args.seconds))
    print_table(results)
    print(f"\nafter: {machine_facts()}")


if __name__ == "__main__":
    main()
