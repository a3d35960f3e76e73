"""A projection group's history applied by several processes at once (a rebuild's
or replay's first pass), each on its own connection, taking the events of its share
of the aggregates.

Why it is faster: a page's apply is about half Python (the folds, the COPY rows)
and half waiting for PostgreSQL (the inserts). One connection does the two one
after the other; with two, one shard folds while the other's statements run, so
both cores work (bench.reports, docs/reports.md). Each shard is a process of its
own, forked from the caller: as threads of one interpreter the shards' Python
took turns under its lock, and once the indexes were built after the pass
(streams/deferred_indexes.py) that lock was what held two shards back. Each shard
reads the history itself (``Read``) and keeps its own share, skipping the rest
before decoding it: a reader process that decoded every event and sent each shard
its part pickled spent 13 us an event on the pickling alone (dumps and loads),
about a quarter of a month's build (bench.reports), and decoded on one core.

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

import gc
import multiprocessing
import pickle
import queue
import signal
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Connection

from projections import positions
from projections.envelope import EventEnvelope, Refused
from projections.registry import ApplyBatch, Connect, ProjectionGroup

# How often the caller, waiting for the shards, looks for one that died without a word.
_CHECK_S = 0.1
# Forked, not spawned: a shard inherits the group, its connection factory and the
# history's reader as the caller made them (closures included, a benchmark's history
# in memory) and starts at once; it opens its own connections.
_CONTEXT = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class Share:
    """The events one of ``jobs`` shards applies: those of ``kinds`` (None: every
    kind) whose aggregate falls to shard ``n``, so an aggregate's events all go to
    one shard, in store order."""

    n: int
    jobs: int
    kinds: frozenset[str] | None

    def takes(self, kind: str, aggregate_id: UUID) -> bool:
        return (self.kinds is None or kind in self.kinds) and aggregate_id.int % self.jobs == self.n


WHOLE = Share(0, 1, None)  # every event: one connection applies all of the history


class Page(NamedTuple):
    """What a reader gives for one page of the store: how many events it read (every
    kind, every share), the last position read, the events of the share asked for, and
    those this release cannot decode (one share gets them: its apply parks them)."""

    read: int
    last: int
    events: list[EventEnvelope]
    refused: tuple[Refused, ...] = ()


# Parks a stored event the release cannot decode (positions.park_undecodable, its group's).
Park = Callable[[Connection[Any], Refused, str], None]


def parker(group: ProjectionGroup) -> Park:
    def park(conn: Connection[Any], refused: Refused, source: str) -> None:
        positions.park_undecodable(conn, group, refused[0], source, refused[1])
    return park


# A history's pages after some position, in store order, as one share sees them. Each
# shard calls it in its own process: it reads on connections of its own.
Read = Callable[[Share], Iterable[Page]]


class Pass(NamedTuple):
    read: int  # events read
    last: int  # the last position read; 0: none


class ShardError(RuntimeError):
    """A shard that failed without a usable report: its error did not pickle (sent as
    its traceback), it died without a word, or the shards read different histories."""


def from_pages(pages: Iterable[Sequence[EventEnvelope]]) -> Read:
    """A ``Read`` of pages already decoded in memory (a benchmark's history, a test's):
    each shard iterates its forked copy. Not for an iterator that reads a database:
    forked, its connection would be every shard's."""
    def read(share: Share) -> Iterable[Page]:
        for page in pages:
            if page:
                yield Page(len(page), page[-1].position,
                           [e for e in page if share.takes(e.kind, e.subject)])
    return read


def apply_sharded(connect: Connect, group: ProjectionGroup, read: Read, source: str,
                  jobs: int, apply: ApplyBatch | None = None,
                  progress: Callable[[int], object] | None = None) -> Pass:
    """Apply the history ``read`` gives (in store order) with the group's apply (or
    ``apply``, e.g. its ``apply_fresh``) in ``jobs`` processes, each reading it and
    applying its share on a connection from ``connect`` (autocommit, set up as the
    caller's own: e.g. its search_path); then record the last position read for the
    group. ``progress`` is told each page's events read. A shard's error stops the
    pass and is raised here, the other shards stopped and their work up to then
    committed (a rebuild starts its copy over)."""
    if not group.per_aggregate:
        raise ValueError(f"{group.names[0]}'s apply is not per aggregate: apply it on one "
                         "connection")
    with _Shards(connect, apply or group.apply, read, group, source, jobs) as shards:
        done = shards.wait(progress)
    if len(set(done)) != 1:
        raise ShardError(f"the shards read different histories: {sorted(set(done))}")
    if done[0].last:
        with connect() as conn, conn.transaction(), conn.cursor() as cur:
            positions.record(cur, group.names, source, done[0].last)
    return done[0]


def apply_pages(conn: Connection[Any], apply: ApplyBatch, history: Iterable[Page], source: str,
                progress: Callable[[int], object] | None = None,
                park: Park | None = None) -> Pass:
    """Apply each page's events on ``conn``, in order (``park`` the ones the release
    cannot decode, as the in-process runner does); tell ``progress`` each page's
    events read. A shard's loop, and one connection's (streams/rebuild.py)."""
    count = last = 0
    for page in history:
        if park is not None:
            for refused in page.refused:
                park(conn, refused, source)
        if page.events:
            apply(conn, page.events, source)
        count, last = count + page.read, page.last
        if progress is not None:
            progress(page.read)
    return Pass(count, last)


Report = tuple[str, Any]  # ("read", events) | ("done", Pass) | ("error", pickled error)


class _Shards:
    """The shard processes and their reports."""

    def __init__(self, connect: Connect, apply: ApplyBatch, read: Read, group: ProjectionGroup,
                 source: str, jobs: int) -> None:
        self.reports: Queue[tuple[int, Report]] = _CONTEXT.Queue()
        self.processes = [
            _CONTEXT.Process(target=_shard, name=f"shard-{n}", daemon=True,
                             args=(connect, apply, read, Share(n, jobs, group.kinds), source,
                                   parker(group),
                                   self.reports))
            for n in range(jobs)]

    def __enter__(self) -> _Shards:
        # What the caller holds (a benchmark's whole history) stays shared with the
        # shards: frozen, their collector never writes to those objects' pages.
        gc.freeze()
        try:
            for process in self.processes:
                process.start()
        finally:
            gc.unfreeze()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop what still runs (after an error: the other shards), join all."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join()

    def wait(self, progress: Callable[[int], object] | None) -> list[Pass]:
        """Each shard's pass once all are done, passing shard 0's progress on; raise a
        shard's failure, or if one died without a report (killed, out of memory)."""
        done: dict[int, Pass] = {}
        while len(done) < len(self.processes):
            try:
                n, (what, value) = self.reports.get(timeout=_CHECK_S)
            except queue.Empty:
                self._raise_if_dead()
                continue
            if what == "error":
                raise pickle.loads(value)  # noqa: S301 - our own shard's, just made
            if what == "read" and progress is not None:
                progress(value)
            elif what == "done":
                done[n] = value
        return [done[n] for n in sorted(done)]

    def _raise_if_dead(self) -> None:
        for process in self.processes:
            if process.exitcode not in (None, 0):
                raise ShardError(f"{process.name} ended with exit code "
                                 f"{process.exitcode} without a word")


def _shard(connect: Connect, apply: ApplyBatch, read: Read, share: Share, source: str,
           park: Park, reports: Queue[tuple[int, Report]]) -> None:
    """A shard's process: read the history, apply its share page by page."""
    # The caller's stop (terminate) ends it, whatever handler the caller had set.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def tell(read_: int) -> None:
        reports.put((share.n, ("read", read_)))

    try:
        with connect() as conn:  # one shard tells the progress: they all read every page
            done = apply_pages(conn, apply, read(share), source, tell if share.n == 0 else None,
                               park)
    except BaseException as error:  # sent to the caller, which raises it
        reports.put((share.n, ("error", _pickled(error))))
        return
    reports.put((share.n, ("done", done)))


def _pickled(error: BaseException) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:  # an error that does not pickle: sent as text
        return pickle.dumps(ShardError("".join(traceback.format_exception(error))))
