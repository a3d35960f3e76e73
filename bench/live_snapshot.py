"""How long one `live_snapshot` read takes for a large tenant (not a test).

Builds, through the real CallCentreService (in memory), 50 queues and 500
agents (each in 3 queues, logged in, some paused) and a day of calls (answered
with wrap-up, abandoned, transferred), projects them into an embedded
PostgreSQL through the call-centre group (reporting its events/s), then reads
the snapshot sequentially as a supervisor and prints p50/p90/p99/max.

    .venv/bin/python -m bench.live_snapshot [--calls 5000] [--reads 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import psycopg

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.snapshot import live_snapshot
from application.callcentre import CallCentreService
from application.identity.model import DEFAULT_TENANT, Role
from bench.common import embedded_postgres, machine_facts, percentile_ms
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations
from domain.addressing import Target
from domain.errors import DomainError
from projections import callcentre
from projections.envelope import EventEnvelope, decode

QUEUES, AGENTS = 50, 500
T0 = datetime(2025, 6, 10, 7, 0, tzinfo=UTC)


def history(calls: int, t0: datetime = T0) -> list[EventEnvelope]:
    """The tenant's day from `t0`: a call every 5 s (bench/live.py starts it today)."""
    s = CallCentreService()
    queues, agents = staffed(s, t0)
    for n, agent in enumerate(agents):
        if n % 10 == 0:
            s.pause(agent, ("lunch", "training", "break")[n % 3], t0 + timedelta(minutes=1))
    for n in range(calls):
        take_call(s, n, t0 + timedelta(seconds=5 * n), queues, agents)
    return decode(s, s.recorder.select_notifications(1, 10_000_000))


def staffed(s: CallCentreService, t0: datetime) -> tuple[list[UUID], list[UUID]]:
    """QUEUES queues and AGENTS agents, every agent logged in at `t0` and a member
    of three queues (agent q + 50 j of queue q with penalty 0)."""
    queues = [s.create_queue(f"q{n}", f"Queue {n}", "longest_idle", occurred_at=t0,
                             wrap_up_s=10).id for n in range(QUEUES)]
    agents = [s.create_agent(f"a{n}", f"Agent {n}", occurred_at=t0).id for n in range(AGENTS)]
    for n, agent in enumerate(agents):
        for k in range(3):
            s.add_member(queues[(n + k * 17) % QUEUES], agent, k, t0)
        s.login(agent, f"sip:a{n}@pbx.example.com", t0)
    return queues, agents


def take_call(s: CallCentreService, n: int, at: datetime, queues: list[UUID],
              agents: list[UUID]) -> UUID:
    """Call `n` enters its queue at `at` and goes its way (answered, abandoned,
    transferred or left waiting, by n); the queue's ten penalty-0 agents take turns."""
    member = n % QUEUES + QUEUES * ((n // QUEUES) % (AGENTS // QUEUES))
    queue, agent, call = queues[n % QUEUES], agents[member], UUID(int=0xB000_0000 + n)
    s.enqueue_call(queue, call, 0, at)
    _serve(s, n, queue, agent, call, at, queues)
    return call


def _serve(s: CallCentreService, n: int, queue: UUID, agent: UUID, call: UUID,
           at: datetime, queues: list[UUID]) -> None:
    try:
        if n % 10 == 3:
            s.abandon_call(queue, call, at + timedelta(seconds=n % 40))
        elif n % 10 == 5:
            s.transfer_call(queue, call, Target.queue(queues[(n + 1) % QUEUES]),
                            at + timedelta(seconds=3))
        elif n % 10 != 9:  # a tenth stay waiting
            s.offer_call(queue, call, [agent], at + timedelta(seconds=1))
            s.accept_offer(agent, call, at + timedelta(seconds=4))
            s.end_agent_call(agent, call, at + timedelta(seconds=60 + n % 120))
            s.finish_wrap_up(agent, at + timedelta(seconds=70 + n % 120))
    except DomainError:  # the agent is still busy: the call just waits
        return


async def read(dsn: str, reads: int, now: datetime) -> list[float]:
    conn = await asyncpg.connect(dsn)
    principal = Principal("bench", "key", DEFAULT_TENANT, Role.SUPERVISOR, "bench")
    samples = []
    try:
        for _ in range(reads):
            started = time.perf_counter()
            await live_snapshot(conn, principal, now)
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    events = history(args.calls)
    with embedded_postgres() as server:
        dsn = server.dsn("bench")
        ensure_database(dsn)
        apply_migrations(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            for first in range(0, len(events), 500):
                callcentre.apply_batch(conn, events[first:first + 500], "store:bench")
            projected_s = time.perf_counter() - started
            visits = conn.execute("SELECT count(*) FROM queue_visits").fetchone()
        now = T0 + timedelta(seconds=5 * args.calls + 30)
        samples = asyncio.run(read(asyncpg_dsn(dsn), args.reads, now))
    print(f"{len(events)} events projected (call-centre group, batches of 500) in "
          f"{projected_s:.1f} s: {len(events) / projected_s:.0f} events/s; "
          f"{visits[0] if visits else 0} queue visits")
    print(f"live_snapshot, {QUEUES} queues, {AGENTS} agents, supervisor, {args.reads} "
          f"sequential reads: p50 {percentile_ms(samples, 0.5):.1f} ms, "
          f"p90 {percentile_ms(samples, 0.9):.1f} ms, p99 {percentile_ms(samples, 0.99):.1f} ms, "
          f"max {max(samples) * 1000:.1f} ms")
    print(machine_facts())


if __name__ == "__main__":
    main()
