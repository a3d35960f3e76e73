"""bench.live's latencies: store commit -> projected, and -> SSE delivery.

A commit's event (its notification id N, on call C) is projected by the first
projection commit that says so: each runner's batch transaction sends a
`dialtone_projections_touched` notification (projections/touched.py) naming its
source, the source's position after it (`upto`) and the ids it touched, C among
them. In the embedded mode the source is the one notification log; in the Kafka
mode it is the topic-partition of the batch's highest position, one row each in
projection_positions. The view streamed to the clients carries those sources'
positions, so a client has the commit once the position of *that* source reaches
the batch's `upto`.

How the benchmark learns of the batches. Until 2026-12-05 it polled
callcentre_events and projection_positions every 20 ms from the writer's process
(about 250 statements a second beside the load's 100 commits, in the process
whose commit times are taken), and guessed a commit's batch as the moved source
with the least position past it. Now one connection LISTENs on the channel the
live feed itself hears, and the commits are matched to the notifications after
the run, by call id: exact, and nothing polled. Until 2026-12-03 the benchmark
followed one source only (the one furthest on at the end): in the Kafka mode a
commit then counted as delivered only when a later batch of that same partition
set came by, seconds later or never, which read as p50 2-15 s.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from kafka import KafkaConsumer, TopicPartition

from projections import touched
from projections.envelope import parse_sequence

Positions = dict[str, int]
Heard = list[tuple[float, str]]  # (when, payload) of each touched notification


@dataclass
class Projected:
    """When each commit's event was first projected, and in which batch."""

    first_seen: dict[int, float] = field(default_factory=dict)
    carried: dict[int, tuple[str, int]] = field(default_factory=dict)  # N -> its batch


def listen_projected(dsn: str, stop: threading.Event, heard: Heard,
                     listening: threading.Event) -> None:
    """Every touched notification, with when it arrived, until `stop`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {touched.CHANNEL}")
        listening.set()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2):
                heard.append((time.time(), note.payload))


def match_projected(commits: list[tuple[float, int]], calls: dict[int, UUID],
                    heard: Iterable[tuple[float, str]]) -> Projected:
    """Each commit (N, on the call `calls[N]`) is in the first batch heard that names
    its call and reaches N. A batch that names no ids (a payload too long, or a kind
    not tied to ids) is matched by its range of the one log, (after, upto], which
    is exact in the embedded mode only; a Kafka batch like that leaves its
    commits unmatched (counted by the caller), never guessed."""
    waiting: dict[UUID, list[int]] = {}
    for _, n in commits:
        waiting.setdefault(calls[n], []).append(n)
    seen = Projected()
    for at, payload in heard:
        batch = touched.Touched.parse(payload)
        if batch is None:
            continue
        named = waiting.keys() & batch.ids if batch.ids is not None else list(waiting)
        for call in named:
            for n in [n for n in waiting[call] if n <= batch.upto
                      and (batch.ids is not None or n > batch.after)]:
                seen.first_seen[n] = at
                seen.carried[n] = (batch.source, batch.upto)
                waiting[call].remove(n)
            if not waiting[call]:
                del waiting[call]
    return seen


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
