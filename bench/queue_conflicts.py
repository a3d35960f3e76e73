"""Which writers of a queue collide: would splitting Queue's settings from its
call flow (two aggregates) remove the store conflicts? A measurement, not a test.

Run: ``.venv/bin/python -m bench.queue_conflicts`` (about a minute; ``--help``).

Every save the store refuses (optimistic concurrency: another writer appended
the same aggregate version first) is attributed from the store itself: the
refused save's events (the loser) against the events that took those versions
(the winner), each classified by aggregate and, for a queue, by half:
``settings`` (domain/queue_config.py) or ``flow`` (domain/queue_flow.py). A
conflict a two-aggregate split would remove is a queue conflict between a
settings writer and a flow writer; flow against flow stays (one call list).

Three loads on one embedded PostgreSQL, as bench/acd.py sets it up (200 agents,
50 queues):
1. steady: bench/acd.py's steady phase (router, SIP-side writers, Poisson
   arrivals), plus ``--admin-rate`` settings changes per second on random queues
   (an administrator's edits; 0 in production for minutes at a time);
2. burst: ``--burst`` callers enter ONE queue at the same instant, each through
   its own service (as many B2BUA workers), the case adapters/sip/store/centre_link.py
   documents.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

import domain.queue_config
import domain.queue_flow
from application.callcentre import CallCentreService, ConcurrentChange
from application.router import RoutingProcess
from bench.acd import Load, bench_server, burst, now, provision, simulate
from dialtone.database import eventsourcing_env
from domain.queue import Queue
from streams.routing_process import RoutingRunner

SETTINGS = {n for n, v in vars(domain.queue_config).items()
            if isinstance(v, type) and issubclass(v, Aggregate.Event)}
FLOW = {n for n, v in vars(domain.queue_flow).items()
        if isinstance(v, type) and issubclass(v, Aggregate.Event)}
_records: list[dict[str, str]] = []
_lock = threading.Lock()


def _half(aggregate: str, names: Sequence[str]) -> str:
    if aggregate != "Queue":
        return aggregate.lower()
    halves = {"settings" if n in SETTINGS else "flow" if n in FLOW else n for n in names}
    return "+".join(sorted(halves))


def _attribute(service: CallCentreService,
               saving: dict[UUID, tuple[str, int, list[str]]]) -> None:
    """Find, for each aggregate of the refused save, the events that took its versions."""
    for aggregate_id, (kind, base, mine) in saving.items():
        taken = service.recorder.select_events(aggregate_id, gt=base, limit=len(mine))
        if not taken:
            continue  # not this aggregate: another of the same save collided
        theirs = [s.topic.rpartition(".")[2] for s in taken]
        with _lock:
            _records.append({"aggregate": kind, "loser": _half(kind, mine),
                             "winner": _half(kind, theirs)})


def _install() -> None:
    """Wrap the service's save so that every refused one is attributed."""
    original: Callable[..., list[Recording[UUID]]] = CallCentreService._commit

    def commit(self: CallCentreService, changed: Sequence[Aggregate]) -> list[Recording[UUID]]:
        saving = {a.id: (type(a).__name__, a.version - len(a.pending_events),
                         [type(e).__name__ for e in a.pending_events]) for a in changed}
        try:
            return original(self, changed)
        except IntegrityError:
            _attribute(self, saving)
            raise

    CallCentreService._commit = commit  # type: ignore[method-assign]


_install()  # also in the spawned SIP-side process, which imports this module


def _dump(path: str) -> None:
    Path(path).write_text(json.dumps(_records))


def _simulate_and_dump(dsn: str, queues: list[UUID], load: Load, until: float, seed: int,
                       out: str) -> None:
    simulate(dsn, queues, load, until, seed)
    _dump(out)


def _admin(dsn: str, queues: list[UUID], rate: float, until: float) -> int:
    """Settings edits on random queues, ``rate`` per second, until ``until``."""
    rng = random.Random(3)
    edits = 0
    with CallCentreService(env=eventsourcing_env(dsn)) as service:
        while time.time() < until:
            time.sleep(rng.expovariate(rate))
            wrap_up = float(rng.randint(0, 30))

            def edit(queue: Queue, seconds: float = wrap_up) -> None:
                queue.set_wrap_up(seconds, now())

            service.configure_queue(rng.choice(queues), edit)
            edits += 1
    return edits


def steady(dsn: str, queues: list[UUID], load: Load, admin_rate: float, out: str) -> None:
    with CallCentreService(env=eventsourcing_env(dsn)) as own:
        process = RoutingProcess(own)
        process.pull()
        runner = RoutingRunner(process, dsn, tick_s=0.05)
        runner.start()
        until = time.time() + load.seconds
        sip = multiprocessing.get_context("spawn").Process(
            target=_simulate_and_dump, args=(dsn, queues, load, until, 11, out))
        sip.start()
        edits = _admin(dsn, queues, admin_rate, until) if admin_rate > 0 else 0
        sip.join(load.seconds + 60)
        runner.stop()
    _records.extend(json.loads(Path(out).read_text()))
    print(f"steady: {load.rate:.0f} calls/s for {load.seconds:.0f} s, {load.sip_threads} "
          f"SIP-side writers, router, {edits} settings edits ({admin_rate}/s)")


def one_queue_burst(dsn: str, queue_id: UUID, callers: int) -> None:
    """``callers`` services enqueue one call each into one queue at the same instant."""
    services = [CallCentreService(env=eventsourcing_env(dsn)) for _ in range(callers)]
    for service in services:
        service.get(Queue, queue_id)  # warm: connection and cache, as a running worker
    start = threading.Barrier(callers)
    gave_up = []

    def enter(service: CallCentreService) -> None:
        start.wait()
        try:
            service.enqueue_call(queue_id, uuid4(), 0, now())
        except ConcurrentChange:
            gave_up.append(1)

    threads = [threading.Thread(target=enter, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for service in services:
        service.close()
    print(f"burst: {callers} callers entering one queue at once; "
          f"{len(gave_up)} gave up after {CallCentreService.attempts} attempts")


def report(title: str, records: list[dict[str, str]]) -> None:
    counts = Counter((r["aggregate"], r["loser"], r["winner"]) for r in records)
    removable = sum(n for (a, lo, w), n in counts.items() if a == "Queue" and lo != w)
    print(f"  {title}: {len(records)} conflicts; a settings/flow split would remove {removable}")
    for (aggregate, loser, winner), n in counts.most_common():
        print(f"    {n:5}  {aggregate:<6} refused {loser:<14} after {winner}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="steady phase length")
    p.add_argument("--rate", type=float, default=25.0, help="call arrivals per second")
    p.add_argument("--sip-threads", type=int, default=2)
    p.add_argument("--admin-rate", type=float, default=1.0, help="settings edits per second")
    p.add_argument("--burst", type=int, default=10, help="callers entering one queue at once")
    args = p.parse_args(argv)
    load = Load(200, 50, 3, 250, args.rate, 8.0, 0.3, args.seconds, args.sip_threads)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with bench_server() as dsn, tempfile.TemporaryDirectory() as tmp:
        with CallCentreService(env=eventsourcing_env(dsn)) as setup:
            queues, agents = provision(setup, load)
        burst(dsn, queues, agents, load)  # as bench/acd.py: every agent busy, calls waiting
        steady(dsn, queues, load, args.admin_rate, str(Path(tmp) / "sip.json"))
        report("steady", _records)
        done = len(_records)
        one_queue_burst(dsn, queues[0], args.burst)
        report("burst", _records[done:])
    print(f"after: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
