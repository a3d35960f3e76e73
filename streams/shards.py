"""A projection group's history applied on several connections at once (a rebuild's
or replay's first pass), each connection taking the events of its share of the
aggregates.

Why it is faster: a page's apply is about half Python (the folds, the COPY rows)
and half waiting for PostgreSQL (the inserts, the index upkeep). One connection
does the two one after the other; with two, one shard folds while the other's
statements run, so both cores work (bench.reports, docs/reports.md).

Why it is safe, for a group that declares ``per_aggregate``: its apply writes, for
one aggregate's events, only that aggregate's rows (its view, its stored events,
the facts keyed by it) and takes a lock per aggregate. An aggregate's events all go
to one shard, in store order, so each aggregate is folded exactly as one connection
would fold it. What shards share commutes: the interval buckets' dirty marks (a
set, recomputed by the settle after the whole pass) and the position rows (the
highest wins). A mark or position row another shard holds is released at that
shard's commit, and a transaction takes them last, after its own rows: two shards
never wait on each other in a cycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack

from projections import positions
from projections.envelope import EventEnvelope
from projections.registry import Connect, ProjectionGroup

# Pages read ahead of the oldest page not yet applied by every shard: enough that no
# shard waits for the reader, few enough that a failing shard stops the pass within
# a few pages.
_AHEAD = 2


def split(page: Sequence[EventEnvelope], kinds: frozenset[str],
          jobs: int) -> list[list[EventEnvelope]]:
    """The page's events of ``kinds``, by shard: an aggregate always to the same one."""
    parts: list[list[EventEnvelope]] = [[] for _ in range(jobs)]
    for envelope in page:
        if envelope.kind in kinds:
            parts[envelope.subject.int % jobs].append(envelope)
    return parts


def apply_sharded(connect: Connect, group: ProjectionGroup,
                  pages: Iterable[Sequence[EventEnvelope]], source: str, jobs: int) -> int:
    """Apply ``pages`` (in store order) with the group's apply on ``jobs`` connections
    from ``connect`` (autocommit, set up as the caller's own: e.g. its search_path),
    then record the last page's position for the group; return it (0 if no events).
    A shard's error stops the pass and is raised here, the other shards' work up to
    then committed (a rebuild starts its copy over)."""
    if not group.per_aggregate:
        raise ValueError(f"{group.names[0]}'s apply is not per aggregate: apply it on one "
                         "connection")
    last = 0
    with ExitStack() as stack:
        connections = [stack.enter_context(connect()) for _ in range(jobs)]
        shards = [stack.enter_context(ThreadPoolExecutor(1, f"shard-{n}")) for n in range(jobs)]
        stack.callback(_cancel, shards)  # on an error: the shards' queued pages dropped
        in_flight: deque[list[Future[int]]] = deque()
        for page in pages:
            if not page:
                continue
            last = max(last, page[-1].position)
            in_flight.append([shard.submit(group.apply, conn, part, source)
                              for shard, conn, part in zip(
                                  shards, connections, split(page, group.kinds, jobs),
                                  strict=True) if part])
            if len(in_flight) > _AHEAD:
                _wait(in_flight.popleft())
        while in_flight:
            _wait(in_flight.popleft())
        if last:
            with connections[0].transaction(), connections[0].cursor() as cur:
                positions.record(cur, group.names, source, last)
    return last


def _wait(futures: list[Future[int]]) -> None:
    for future in futures:
        future.result()  # a shard's error, raised in the reader's thread


def _cancel(shards: list[ThreadPoolExecutor]) -> None:
    for shard in shards:
        shard.shutdown(wait=True, cancel_futures=True)
