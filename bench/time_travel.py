"""How long time travel (api/live/at.py) takes for one busy queue (not a test).

Builds, through the real CallCentreService (in memory), one queue with 10
agents and a call every 5 s (answered with wrap-up, abandoned, or left
waiting), projects it into an embedded PostgreSQL through the call-centre
group, then asks `GET /v1/queues/{key}/at`'s read (`snapshot_at` narrowed to
the queue) and the tenant-wide one at random past instants, and prints
p50/p90/p99/max. Issue 11's target: p99 < 100 ms for a queue with 100k events
(``--calls 33000`` gives about that many queue events: 3 per call).

    .venv/bin/python -m bench.time_travel [--calls 33000] [--reads 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import psycopg

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.at import snapshot_at
from application.callcentre import CallCentreService
from application.identity.model import DEFAULT_TENANT, Role
from bench.common import embedded_postgres, machine_facts, percentile_ms
from bench.reports import SERVICE_ENV
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations
from domain.errors import DomainError
from domain.queue import Queue
from projections import callcentre
from projections.envelope import EventEnvelope, decode

AGENTS = 10
T0 = datetime(2025, 6, 1, 7, 0, tzinfo=UTC)


def history(calls: int) -> list[EventEnvelope]:
    s = CallCentreService(SERVICE_ENV)  # bench/reports.py says why
    queue = s.create_queue("busy", "Busy", "longest_idle", occurred_at=T0, wrap_up_s=10).id
    agents = [s.create_agent(f"a{n}", f"Agent {n}", occurred_at=T0).id for n in range(AGENTS)]
    for n, agent in enumerate(agents):
        s.add_member(queue, agent, 0, T0)
        s.login(agent, f"sip:a{n}@pbx.example.com", T0)
    for n in range(calls):
        at, call, agent = T0 + timedelta(seconds=5 * n), UUID(int=0xC000_0000 + n), agents[n % 10]
        s.enqueue_call(queue, call, 0, at)
        try:
            if n % 10 == 3:
                s.abandon_call(queue, call, at + timedelta(seconds=n % 40))
            elif n % 10 != 9:
                s.offer_call(queue, call, [agent], at + timedelta(seconds=1))
                s.accept_offer(agent, call, at + timedelta(seconds=4))
                s.end_agent_call(agent, call, at + timedelta(seconds=20 + n % 20))
                s.finish_wrap_up(agent, at + timedelta(seconds=45))
            else:  # answered a while later: long waits at most instants
                s.offer_call(queue, call, [agent], at + timedelta(seconds=2))
                s.miss_offer(agent, call, at + timedelta(seconds=3))
                s.abandon_call(queue, call, at + timedelta(seconds=48))
        except DomainError:  # the agent is busy: the call waits
            continue
    return decode(s, s.recorder.select_notifications(1, 100_000_000))


async def read(dsn: str, instants: list[datetime], queue: UUID | None) -> list[float]:
    conn = await asyncpg.connect(dsn)
    principal = Principal("bench", "key", DEFAULT_TENANT, Role.SUPERVISOR, "bench")
    samples = []
    try:
        for t in instants:
            started = time.perf_counter()
            await snapshot_at(conn, principal, t, queue_id=queue)
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=33_000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    events = history(args.calls)
    queue_id = Queue.id_for("busy", DEFAULT_TENANT)
    queue_events = sum(1 for e in events if e.subject == queue_id)
    end = T0 + timedelta(seconds=5 * args.calls)
    rng = random.Random(1)
    instants = [T0 + (end - T0) * rng.random() for _ in range(args.reads)]
    with embedded_postgres() as server:
        dsn = server.dsn("bench")
        ensure_database(dsn)
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for first in range(0, len(events), 1000):
                callcentre.apply_batch(conn, events[first:first + 1000], "store:bench")
            conn.execute("ANALYZE")
        one = asyncio.run(read(asyncpg_dsn(dsn), instants, queue_id))
        whole = asyncio.run(read(asyncpg_dsn(dsn), instants, None))
    print(f"{len(events)} events, {queue_events} of them the queue's, over "
          f"{(end - T0).total_seconds() / 86400:.1f} days")
    for name, samples in (("queue at t", one), ("tenant at t", whole)):
        print(f"{name}, {args.reads} sequential reads at random instants: "
              f"p50 {percentile_ms(samples, 0.5):.1f} ms, p90 {percentile_ms(samples, 0.9):.1f} "
              f"ms, p99 {percentile_ms(samples, 0.99):.1f} ms, max {max(samples) * 1000:.1f} ms")
    print(machine_facts())


if __name__ == "__main__":
    main()
