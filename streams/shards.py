"""A projection group's history applied by several processes at once (a rebuild's
or replay's first pass), each on its own connection, taking the events of its share
of the aggregates.

Why it is faster: a page's apply is about half Python (the folds, the COPY rows)
and half waiting for PostgreSQL (the inserts). One connection does the two one
after the other; with two, one shard folds while the other's statements run, so
both cores work (bench.reports, docs/reports.md). Each shard is a process of its
own, forked from the reader: as threads of one interpreter the shards' Python
took turns under its lock, and once the indexes were built after the pass
(streams/deferred_indexes.py) that lock was what held two shards back. The
reader sends each shard its part of every page (pickled, through a bounded
queue) and records the position once all are done.

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
from collections.abc import Iterable, Sequence
from multiprocessing.queues import Queue

from projections import positions
from projections.envelope import EventEnvelope
from projections.registry import ApplyBatch, Connect, ProjectionGroup

# Parts queued for a shard beyond the one it applies: enough that no shard waits for
# the reader, few enough that a failing shard stops the pass within a few pages.
_AHEAD = 2
# How often a reader blocked on a full queue looks for a shard's failure.
_CHECK_S = 0.1
# Forked, not spawned: a shard inherits the group and its connection factory as the
# caller made them (closures included) and starts at once; it opens its own connection.
_CONTEXT = multiprocessing.get_context("fork")

Part = list[EventEnvelope] | None  # None: the pass is over
Report = bytes | None  # a shard's pickled exception, or None: it is done


class ShardError(RuntimeError):
    """A shard that failed without a usable report: its error did not pickle (sent as
    its traceback), or it died without a word."""


def split(page: Sequence[EventEnvelope], kinds: frozenset[str],
          jobs: int) -> list[list[EventEnvelope]]:
    """The page's events of ``kinds``, by shard: an aggregate always to the same one."""
    parts: list[list[EventEnvelope]] = [[] for _ in range(jobs)]
    for envelope in page:
        if envelope.kind in kinds:
            parts[envelope.subject.int % jobs].append(envelope)
    return parts


def apply_sharded(connect: Connect, group: ProjectionGroup,
                  pages: Iterable[Sequence[EventEnvelope]], source: str, jobs: int,
                  apply: ApplyBatch | None = None) -> int:
    """Apply ``pages`` (in store order) with the group's apply (or ``apply``, e.g. its
    ``apply_fresh``) in ``jobs`` processes,
    each on a connection from ``connect`` (autocommit, set up as the caller's own: e.g.
    its search_path), then record the last page's position for the group; return it
    (0 if no events). A shard's error stops the pass and is raised here, the other
    shards stopped and their work up to then committed (a rebuild starts its copy over)."""
    if not group.per_aggregate:
        raise ValueError(f"{group.names[0]}'s apply is not per aggregate: apply it on one "
                         "connection")
    last = 0
    with _Shards(connect, apply or group.apply, source, jobs) as shards:
        for page in pages:
            if not page:
                continue
            last = max(last, page[-1].position)
            for n, part in enumerate(split(page, group.kinds, jobs)):
                if part:
                    shards.send(n, part)
        shards.finish()
    if last:
        with connect() as conn, conn.transaction(), conn.cursor() as cur:
            positions.record(cur, group.names, source, last)
    return last


class _Shards:
    """The shard processes, each with its inbox of parts, and their reports."""

    def __init__(self, connect: Connect, apply: ApplyBatch, source: str, jobs: int) -> None:
        self.reports: Queue[Report] = _CONTEXT.Queue()
        self.inboxes: list[Queue[Part]] = [_CONTEXT.Queue(_AHEAD) for _ in range(jobs)]
        self.processes = [
            _CONTEXT.Process(target=_shard, name=f"shard-{n}", daemon=True,
                             args=(connect, apply, source, self.inboxes[n], self.reports))
            for n in range(jobs)]
        self.done = 0

    def __enter__(self) -> _Shards:
        # What the reader holds (a benchmark's whole history) stays shared with the
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

    def send(self, n: int, part: Part) -> None:
        """Queue ``part`` for shard ``n``, raising a shard's failure instead of waiting
        on a queue that a failed shard no longer empties."""
        while True:
            try:
                self.inboxes[n].put(part, timeout=_CHECK_S)
                break
            except queue.Full:
                self._check(0)
        self._check(0)

    def finish(self) -> None:
        """Tell every shard the pass is over; return once all are done."""
        for n in range(len(self.processes)):
            self.send(n, None)
        while self.done < len(self.processes):
            self._check(_CHECK_S)

    def _check(self, wait_s: float) -> None:
        """Take a report if one comes within ``wait_s``: count a shard done, or raise
        its failure. With none, raise if a shard died without one (killed, or out of
        memory)."""
        try:
            error = self.reports.get(timeout=wait_s) if wait_s else self.reports.get_nowait()
        except queue.Empty:
            for process in self.processes:
                if process.exitcode not in (None, 0):
                    raise ShardError(f"{process.name} ended with exit code "
                                     f"{process.exitcode} without a word") from None
            return
        if error is not None:
            raise pickle.loads(error)  # noqa: S301 - our own shard's, just made
        self.done += 1


def _shard(connect: Connect, apply: ApplyBatch, source: str,
           inbox: Queue[Part], reports: Queue[Report]) -> None:
    """A shard's process: apply each part it is sent, in order, until None."""
    # The reader's stop (terminate) ends it, whatever handler the reader had set.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with connect() as conn:
            while (part := inbox.get()) is not None:
                apply(conn, part, source)
    except BaseException as error:  # sent to the reader, which raises it
        reports.put(_pickled(error))
        return
    reports.put(None)


def _pickled(error: BaseException) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:  # an error that does not pickle: sent as text
        return pickle.dumps(ShardError("".join(traceback.format_exception(error))))
