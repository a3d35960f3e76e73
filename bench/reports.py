"""Interval reports (issue 11 §1): projecting a month of history and reading reports (not a test).

Builds, through the real CallCentreService (in memory), 50 queues and 500
agents (bench.live_snapshot's centre) and `--days` days of calls spread evenly
(answered with wrap-up, abandoned, transferred, a tenth abandoning after a long
wait), projects them into an embedded PostgreSQL through the call-centre group
(whose apply marks the 15-minute buckets dirty), then runs the refresher's work
(the bucket sums; events/s reported for the apply, the refresh and both), then
vacuums, analyzes and checkpoints the database (as after any bulk load), then
times reports as the API runs them (api.queries.reports, one connection,
sequential): a daily queue report over the whole range, and a 15-minute queue
and agent report over its last day. Prints p50/p90/p99/max, and what the server
did meanwhile (checkpoints, autovacuum).

    .venv/bin/python -m bench.reports [--days 30] [--calls-per-day 1000] [--reads 50]
                                      [--batch 30000] [--jobs 2] [--history PATH]
                                      [--compare EVENTS]

``--batch``: events per apply, a rebuild's page (streams.history.PAGE) by default
(building the tables from scratch); 500 is what the runs before 2026-12-03 17:00 used,
10,000 the runs before 2026-12-05 13:10.

``--jobs``: connections the apply runs on at once, each taking its share of the
agents and queues, as a rebuild's first pass does (streams/shards.py); 1 is the
runners' way, and the runs before 2026-12-04 21:00.

``--compare``: the live path both ways (see ``compare``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import psycopg

from api.db import asyncpg_dsn
from api.queries.reports import ReportRequest, report, snapshot
from application.callcentre import CallCentreService
from application.identity.model import DEFAULT_TENANT
from bench.common import embedded_postgres, machine_facts, percentile_ms
from bench.live_snapshot import QUEUES, T0, staffed, take_call
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations
from dialtone.services.serving import freeze_startup_objects
from domain.errors import DomainError
from projections import callcentre, interval_buckets
from projections.envelope import EventEnvelope, decode
from streams.history import PAGE  # events a rebuild applies at a time
from streams.rebuild import JOBS, first_pass
from streams.shards import from_pages

# The aggregate cache hands out its own copy of each aggregate instead of a deep copy
# (eventsourcing's DEEPCOPY_FROM_AGGREGATE_CACHE; application/calls.py does the same):
# the deep copies were two thirds of building the history (a queue with its waiting
# calls copied on every command). Safe here: one writer, and the only command this
# history sees refused (an offer to a busy agent) is refused before it changes
# anything. Same events either way (1 day, 2,000 calls: equal, envelope by envelope).
# And the cached aggregate is taken as it is, not fast-forwarded through the recorder
# first (AGGREGATE_CACHE_FASTFORWARD, on for the service's several writers): the
# in-memory recorder finds an aggregate's new events by walking all its versions,
# so at 10,000 calls a queue every command paid for its queue's whole history.
SERVICE_ENV = {"DEEPCOPY_FROM_AGGREGATE_CACHE": "n", "AGGREGATE_CACHE_FASTFORWARD": "n"}


def history(days: int, per_day: int) -> list[EventEnvelope]:
    s = CallCentreService(SERVICE_ENV)
    queues, agents = staffed(s, T0)
    gap = 86_400 / per_day
    for n in range(days * per_day):
        at = T0 + timedelta(seconds=gap * n)
        call = take_call(s, n, at, queues, agents)
        _settle(s, n, call, at, queues)
    return decode(s, s.recorder.select_notifications(1, 100_000_000))


def _settle(s: CallCentreService, n: int, call: UUID, at: datetime, queues: list[UUID]) -> None:
    """The calls bench.live_snapshot's day leaves waiting (a tenth, and those it
    transfers to another queue) leave after a long wait here: over a month they
    would pile up in the queues, 100,000 of them at 500,000 calls, each making
    every command on its queue slower (a queue scans its waiting calls), which no
    real centre's history looks like. Their wait counts as a long abandon."""
    if n % 10 not in (5, 9):
        return
    queue = queues[(n + 1) % QUEUES] if n % 10 == 5 else queues[n % QUEUES]
    with contextlib.suppress(DomainError):  # an agent took it after all
        s.abandon_call(queue, call, at + timedelta(seconds=300 + n % 300))




def stored_history(path: str | None, days: int, per_day: int) -> list[EventEnvelope]:
    """The history, built (``history``) or read back from ``path`` (a pickle this
    benchmark wrote: only ever its own file)."""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            events: list[EventEnvelope] = pickle.load(f)  # our own file
        return events
    events = history(days, per_day)
    if path:
        with open(path, "wb") as f:
            pickle.dump(events, f)
    return events


async def timed(dsn: str, requests: list[ReportRequest], reads: int,
                now: datetime) -> dict[str, list[float]]:
    conn = await asyncpg.connect(dsn)
    samples: dict[str, list[float]] = {}
    try:
        for request in requests:
            name = f"{request.kind} {request.interval}"
            samples[name] = []
            for _ in range(reads):
                started = time.perf_counter()
                async with snapshot(conn):  # the API's transaction (api/routes/reports.py)
                    rows = await report(conn, request, "UTC", now)
                samples[name].append(time.perf_counter() - started)
            samples[f"{name} rows"] = [float(len(rows))]
    finally:
        await conn.close()
    return samples


def _background(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """What the server does besides the reads: checkpoints so far, buffers they wrote,
    autovacuum workers running now."""
    row = conn.execute(
        "SELECT num_timed + num_requested, buffers_written,"
        " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker')"
        " FROM pg_stat_checkpointer").fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


LIVE_BATCH = 10  # events per batch on the live path (a runner keeping up sees a few)


def small_batches(dsn: str, events: list[EventEnvelope], inline: bool) -> list[float]:
    """Seconds per batch of LIVE_BATCH events until the projections have them: the apply
    alone (the buckets marked, the refresher's work beside), or ``inline``, the apply
    followed by the refresh it used to carry in its transaction."""
    samples = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for first in range(0, len(events), LIVE_BATCH):
            started = time.perf_counter()
            callcentre.apply_batch(conn, events[first:first + LIVE_BATCH], "store:bench")
            if inline:
                interval_buckets.refresh_dirty(conn)
            samples.append(time.perf_counter() - started)
        if not inline:
            interval_buckets.refresh_dirty(conn, wait=True)
    return samples


def compare(server: Any, events: list[EventEnvelope], tail: int) -> None:
    """The live path, both ways, in the same conditions: two databases hold the history
    but its last ``tail`` events (batches of 500, refreshed), then take those in batches
    of LIVE_BATCH, one database marking only, the other refreshing after each batch;
    alternating, so that the machine's load falls on both alike."""
    dsns = []
    for name in ("bench_marks", "bench_inline"):
        dsn = server.dsn(name)
        ensure_database(dsn)
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for first in range(0, len(events) - tail, 500):
                callcentre.apply_batch(conn, events[first:min(first + 500, len(events) - tail)],
                                       "store:bench")
            interval_buckets.refresh_dirty(conn, wait=True)
        dsns.append(dsn)
    rest = events[len(events) - tail:]
    found: dict[bool, list[float]] = {False: [], True: []}
    for first in range(0, len(rest), 20 * LIVE_BATCH):  # alternate every 20 batches
        for inline in (False, True):
            found[inline] += small_batches(dsns[inline], rest[first:first + 20 * LIVE_BATCH],
                                           inline)
    for inline, samples in found.items():
        way = "apply + refresh (as before)" if inline else "apply, buckets marked"
        print(f"live path, {len(samples)} batches of {LIVE_BATCH} events, {way}: p50 "
              f"{percentile_ms(samples, 0.5):.1f} ms, p90 {percentile_ms(samples, 0.9):.1f} "
              f"ms, p99 {percentile_ms(samples, 0.99):.1f} ms")


def project(dsn: str, events: list[EventEnvelope], batch: int, jobs: int) -> None:
    """The call-centre group's apply over ``events``, pages of ``batch``: in ``jobs``
    processes at once as a rebuild's first pass does (streams/shards.py: each reads the
    history, here the list it inherits, and takes its share), or on one connection."""
    # The pages made once, here: sliced by each shard, the slicing was 3 % of its time.
    pages = [events[first:first + batch] for first in range(0, len(events), batch)]
    # A rebuild's own first pass: the indexes the apply never reads built at the end (timed).
    first_pass(partial(psycopg.connect, dsn, autocommit=True), callcentre.GROUP,
               from_pages(pages), "store:bench", jobs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls-per-day", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--batch", type=int, default=PAGE,
                        help="events per apply: a rebuild's page (default) or, e.g. 500, "
                        "a runner's batch")
    parser.add_argument("--jobs", type=int, default=JOBS,
                        help="connections the apply runs on at once, as a rebuild's first "
                        f"pass (default {JOBS}); 1: one, as the runners")
    parser.add_argument("--history", metavar="PATH",
                        help="read the history from PATH if it exists, else build it and "
                        "write it there (to time the build on the same events twice)")
    parser.add_argument("--compare", type=int, default=0, metavar="EVENTS",
                        help="also time the last EVENTS events in batches of 10 with and "
                        "without the refresh after each (two more databases)")
    args = parser.parse_args()
    started = time.perf_counter()
    events = stored_history(args.history, args.days, args.calls_per_day)
    built_s = time.perf_counter() - started
    end = T0 + timedelta(days=args.days)
    with embedded_postgres() as server:
        dsn = server.dsn("bench")
        ensure_database(dsn)
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            project(dsn, events, args.batch, args.jobs)
            projected_s = time.perf_counter() - started
            # The refresher's work, which the apply only marked (here after it, not beside it).
            started = time.perf_counter()
            refreshed = interval_buckets.refresh_fresh(  # every batch, as a rebuild's
                lambda: psycopg.connect(dsn, autocommit=True), args.jobs)
            refresh_s = time.perf_counter() - started
            buckets = conn.execute("SELECT count(*) FROM interval_marks").fetchone()
            # Then what follows any bulk load, before the reads are timed: statistics (a
            # rebuild analyzes what it built before swapping it in) and the vacuum that
            # autovacuum would otherwise run on each table (millions of rows inserted)
            # while the reads are timed, on the same two cores.
            started = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")
            # And the checkpoint that writes out what the load dirtied: left to the
            # server, it comes when the load's WAL or the timeout asks, spread over
            # minutes: it landed in the reads (p50 106-116, p99 199-255 ms, against
            # 82 and 160 with it here; docs/reports.md).
            conn.execute("CHECKPOINT")
            settle_s = time.perf_counter() - started
            before_reads = _background(conn)
        if args.compare:
            compare(server, events, args.compare)
        # The reads run in a process without the history, as an API process is: 2.85
        # million envelopes at 500,000 calls, which each full collection of the garbage
        # collector walked (about 6 s, landing in whichever read ran: every fourth or
        # fifth 15-minute agent report read, and the tails measured before 2026-12-04).
        # And what the API process does once started: what is left is frozen out of
        # later collections (dialtone/services/serving.py). Without it a full collection
        # walked the imports' objects every few reads: 15-minute queue report reads of
        # 40 ms and of 110-130 ms, the slow ones each with a collection (2026-12-05).
        count = len(events)
        del events
        freeze_startup_objects()
        requests = [
            ReportRequest(DEFAULT_TENANT, "queue", "1d", T0, end, None),
            ReportRequest(DEFAULT_TENANT, "queue", "15m", end - timedelta(days=1), end, None),
            ReportRequest(DEFAULT_TENANT, "agent", "15m", end - timedelta(days=1), end, None),
        ]
        samples = asyncio.run(timed(asyncpg_dsn(dsn), requests, args.reads,
                                    end + timedelta(hours=1)))
        with psycopg.connect(dsn, autocommit=True) as conn:
            after_reads = _background(conn)
    print(f"{args.days * args.calls_per_day} calls, {count} events built in "
          f"{built_s:.0f} s; projected (call-centre group, buckets marked dirty, batches of "
          f"{args.batch}, {args.jobs} connection(s)) in {projected_s:.1f} s: "
          f"{count / projected_s:.0f} events/s; then "
          f"{refreshed} dirty 15-minute buckets refreshed in {refresh_s:.1f} s; both: "
          f"{count / (projected_s + refresh_s):.0f} events/s; "
          f"{buckets[0] if buckets else 0} buckets computed; VACUUM (ANALYZE) and CHECKPOINT "
          f"after it {settle_s:.1f} s")
    print(f"during the reads: {after_reads[0] - before_reads[0]} checkpoints, "
          f"{after_reads[1] - before_reads[1]} buffers written by the checkpointer, "
          f"autovacuum workers at start and end {before_reads[2]}, {after_reads[2]}")
    for name, values in samples.items():
        if name.endswith(" rows"):
            continue
        print(f"{name} report ({samples[name + ' rows'][0]:.0f} rows), {args.reads} sequential "
              f"reads: p50 {percentile_ms(values, 0.5):.1f} ms, p90 "
              f"{percentile_ms(values, 0.9):.1f} ms, p99 {percentile_ms(values, 0.99):.1f} ms, "
              f"max {max(values) * 1000:.1f} ms")
    print(machine_facts())


if __name__ == "__main__":
    main()
