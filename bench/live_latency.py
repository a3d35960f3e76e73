"""bench.live's latencies: store commit -> projected, and -> SSE delivery.

A commit's event (its notification id N) is projected when its row appears in
callcentre_events, and it is in the commit of one projection source's batch: in
the embedded mode the one notification log; in the Kafka mode the topic-partition
of the batch's highest position (a batch's set of partitions until 2026-12-04),
one source row each in projection_positions. The view streamed to the clients carries those sources'
positions, so a client has the commit once the position of *that* source reaches
the batch's. Until 2026-12-03 the benchmark followed one source only (the one
furthest on at the end): in the Kafka mode a commit then counted as delivered
only when a later batch of that same partition set came by, seconds later or
never, which read as p50 2-15 s.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from kafka import KafkaConsumer, TopicPartition

from projections.envelope import parse_sequence

Positions = dict[str, int]


@dataclass
class Projected:
    """What the watcher saw: when each event row first appeared, and in which batch."""

    first_seen: dict[int, float] = field(default_factory=dict)
    carried: dict[int, tuple[str, int]] = field(default_factory=dict)  # N -> its batch


def watch_projected(dsn: str, stop: threading.Event, seen: Projected, queues: list[UUID],
                    commits: list[tuple[float, int]], after: int) -> None:
    """Every 20 ms, in one snapshot: the events of `queues` (the load's, filled by its
    writer) projected after `after`, and the projection's positions (the tenant's
    history in the same tables has positions of its own, not the store's). A new row's
    batch is the source whose position moved in that poll to the least value at or past
    the row's position. Only rows past the first commit not seen yet are read (a poll
    reading every row so far cost the writer's process, this one, half a core)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        previous: Positions = {}
        waiting = 0  # commits[waiting] is the first whose row is not seen yet
        while not stop.wait(0.02):
            while waiting < len(commits) and commits[waiting][1] in seen.first_seen:
                waiting += 1
            if waiting < len(commits):
                low = commits[waiting][1] - 1
            else:
                low = commits[-1][1] if commits else after
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                new = [int(r[0]) for r in conn.execute(
                    "SELECT position FROM callcentre_events WHERE aggregate_id = ANY(%s)"
                    " AND position > %s", (list(queues), low))
                    if int(r[0]) not in seen.first_seen]
                rows = conn.execute("SELECT source, position FROM projection_positions "
                                    "WHERE projection = 'callcentre_events'").fetchall()
            now, positions = time.time(), {str(r[0]): int(r[1]) for r in rows}
            moved = {s: p for s, p in positions.items() if previous.get(s) != p}
            for n in new:
                seen.first_seen[n] = now
                seen.carried[n] = _batch_of(n, moved) or _batch_of(n, positions) or ("", n)
            previous = positions


def _batch_of(n: int, positions: Positions) -> tuple[str, int] | None:
    covering = [(p, s) for s, p in positions.items() if p >= n]
    if not covering:
        return None
    position, source = min(covering)
    return source, position


def projected_latencies(commits: list[tuple[float, int]], seen: Projected) -> list[float]:
    """Per commit: its event's row first seen - the commit's return."""
    return [max(0.0, seen.first_seen[n] - at) for at, n in commits if n in seen.first_seen]


def delivery_latencies(commits: list[tuple[float, int]],
                       clients: list[list[tuple[float, Positions]]],
                       seen: Projected) -> list[float]:
    """For every client and commit: the first event whose position of the commit's
    batch source reaches the batch's - the commit's return. Commits the stream never
    covered before it ended are left out (the clients stop 6 s after the load)."""
    latencies = []
    for events in clients:
        by_source: dict[str, tuple[list[int], list[float]]] = {}
        for at, positions in events:
            for source, position in positions.items():
                marks, times = by_source.setdefault(source, ([], []))
                if not marks or position > marks[-1]:
                    marks.append(position)
                    times.append(at)
        for committed_at, n in commits:
            source, position = seen.carried.get(n, ("", n))
            marks, times = by_source.get(source, ([], []))
            i = bisect.bisect_left(marks, position)
            if i < len(marks):
                latencies.append(max(0.0, times[i] - committed_at))
    return latencies


def watch_kafka(bootstrap: str, topic: str, stop: threading.Event,
                arrived: dict[int, float]) -> None:
    """The Kafka mode's middle mark: when each event (by its store position, the
    CloudEvent's `sequence`) is first readable on `topic`, read uncommitted as the
    Faust worker reads it. Splits store -> projected into the relay's part (store ->
    on Kafka) and the worker's (on Kafka -> projected)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_uncommitted",
                             enable_auto_commit=False, fetch_max_wait_ms=20)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=20).values():
                now = time.time()
                for record in records:
                    position = parse_sequence(json.loads(record.value)["sequence"])
                    arrived.setdefault(position, now)
    finally:
        consumer.close()


def stage_latencies(commits: list[tuple[float, int]], arrived: dict[int, float],
                    seen: Projected) -> tuple[list[float], list[float]]:
    """Per commit whose event was seen on Kafka and projected: store -> on Kafka, and
    on Kafka -> projected."""
    relay, worker = [], []
    for at, n in commits:
        if n in arrived and n in seen.first_seen:
            relay.append(max(0.0, arrived[n] - at))
            worker.append(max(0.0, seen.first_seen[n] - arrived[n]))
    return relay, worker


class KafkaMarks:
    """watch_kafka on a thread while the load is stored (the Kafka mode only)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.arrived: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=watch_kafka,
                                        args=(bootstrap, topic, self._stop, self.arrived))
        self._thread.start()

    def report(self, commits: list[tuple[float, int]], seen: Projected) -> str:
        self._stop.set()
        self._thread.join()
        relay, worker = stage_latencies(commits, self.arrived, seen)
        if not relay:
            return "  (no measured event was seen on Kafka)"
        return (f"  of which store commit -> on Kafka (the relay): p50 {_ms(relay, 0.5)} ms, "
                f"p99 {_ms(relay, 0.99)} ms; on Kafka -> projected (the worker): p50 "
                f"{_ms(worker, 0.5)} ms, p99 {_ms(worker, 0.99)} ms ({len(relay)} events)")


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"
