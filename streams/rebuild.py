"""Drop and rebuild call projections from the event store.

History is read page by page from the notification log and folded in memory
(projections.calls), then written with COPY in one transaction: readers see
the old projection until the new one is complete. Live appliers (the in-process
runner, Faust workers) may keep running: what they applied before the
transaction's locks is folded in under them (it is in the store by then), and
their later writes wait for the locks and continue from the rebuilt rows, which
are version-gated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import psycopg.errors
from eventsourcing.application import Application
from psycopg import sql

from domain.addressing import DEFAULT_TENANT
from projections import call_events, call_live, calls, interval_buckets, positions
from projections.calls import CallView, advance, start
from projections.envelope import EventEnvelope, Refused, jsonb
from projections.registry import (
    Connect,
    ProjectionGroup,
    create_aside,
    swap_in,
    tables,
)
from streams import deferred_indexes
from streams.history import store_read
from streams.shards import WHOLE, Pass, Read, apply_pages, apply_sharded, parker

REBUILDABLE = (call_events.NAME, calls.CDR, call_live.NAME)
Progress = Callable[[int], object]
# Connections a group's first pass is applied on, when its apply is per aggregate: two
# let one fold while the other's statements run (a page is about half of each), which
# is what two cores can give; more add threads that wait for the interpreter.
JOBS = 2


@dataclass
class _Fold:
    views: dict[UUID, CallView] = field(default_factory=dict)
    events: list[EventEnvelope] = field(default_factory=list)
    last_position: int = 0
    refused: list[Refused] = field(default_factory=list)  # parked as the live runner does

    def add(self, envelope: EventEnvelope, keep_events: bool) -> None:
        self.last_position = envelope.position
        if envelope.kind != calls.KIND:
            return
        if keep_events:
            self.events.append(envelope)
        view = self.views.get(envelope.subject)
        if view is None:
            if envelope.version == 1:
                self.views[envelope.subject] = start(envelope)
        elif envelope.version == view.last_version + 1:
            advance(view, envelope)


def replay_group(app: Application[Any], database_url: str, group: ProjectionGroup,
                 progress: Progress | None = None, jobs: int = JOBS) -> int:
    """Rebuild a projection group by replaying history through its live path,
    aside, then swap it in: readers see the old tables until one short
    transaction replaces them with the complete new ones. Return the events read.

    1. The group's tables (and a projection_positions) are created empty in a
       schema of their own (``rebuild_<names[0]>``, same DDL: registry.create_aside)
       and history is applied there, on a connection whose search_path puts that
       schema first: the live tables are not touched. A group whose apply is per
       aggregate (the call centre's) is applied on ``jobs`` such connections at
       once, each taking its share of the aggregates (streams/shards.py).
    2. Catch up, still without a lock, while history grows under us.
    3. One transaction: ACCESS EXCLUSIVE locks on the live tables, taken without
       waiting (retried until no reader holds one: see _lock; readers and live
       appliers then wait, for this transaction only), the last events stored
       since step 2 applied aside, then each live table dropped and its copy
       moved into public, position rows included (registry.swap_in).

    Live appliers (the in-process runner, the Faust workers) keep running. What
    they wrote to the old tables before the lock is in the store, below the
    position step 3 reads under the lock, so the new tables hold it too. A batch
    waiting on the lock goes to the new tables once it is granted (PostgreSQL
    looks the name up again), where its events are already applied and are
    deduplicated (version-gated folds, GREATEST positions); later events follow
    as usual. Another group that marks this group's interval buckets (the calls
    group, when a handled call's hold changes) writes to the live marks: a trigger
    carries each into the copy while it is built (interval_buckets.carry_marks), so
    the copy recomputes that bucket; a mark carried after the copy's last refresh is
    swapped in still dirty, for the live refresher.
    """
    source = f"store:{app.name}"
    schema = f"rebuild_{group.names[0]}"
    names = tables(group)
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_aside(conn, schema, names)
        if interval_buckets.DIRTY in names:  # the calls group's hold marks reach the copy
            interval_buckets.carry_marks(conn, schema)
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
        count = _apply_after(app, conn, group, source, 0, progress,
                             shards=(_aside(database_url, schema), jobs))
        _analyze(conn, schema, names)
        for _ in range(_CATCH_UP_ROUNDS):
            caught_up = _apply_after(app, conn, group, source, _staged(conn, group, source),
                                     progress)
            count += caught_up
            if caught_up < _SMALL:
                break
        deadline = time.monotonic() + _LOCK_PATIENCE_S
        while True:
            try:
                with conn.transaction():
                    _lock(conn, names)
                    count += _apply_after(app, conn, group, source,
                                          _staged(conn, group, source), progress)
                    swap_in(conn, schema, names, group.names, source)
                break
            except psycopg.errors.LockNotAvailable:
                # A reader or applier holds one of the tables: let it finish, catch
                # up with what it may have stored meanwhile, try again.
                if time.monotonic() > deadline:  # the copy stays aside; a new run drops it
                    raise RuntimeError(f"could not lock {', '.join(names)} for the swap in "
                                       f"{_LOCK_PATIENCE_S:.0f} s: a long transaction holds "
                                       "one (pg_locks says which)") from None
                count += _apply_after(app, conn, group, source, _staged(conn, group, source),
                                      progress)
                time.sleep(_LOCK_RETRY_S)
        conn.execute("RESET search_path")
    return count


def replay_until(sources: Sequence[tuple[Application[Any], Collection[str]]], database_url: str,
                 groups: Sequence[ProjectionGroup], until: datetime, schema: str,
                 progress: Progress | None = None, jobs: int = JOBS) -> int:
    """Every group's tables as of ``until``, built into the new schema ``schema``
    (same DDL as the live tables, positions included) from the events that
    occurred at or before ``until``; the live tables are left alone. Each group
    is fed by the event sources (``sources``: each with the kinds it publishes)
    that publish its kinds.
    Return the events read. ValueError if the schema exists or is reserved."""
    if schema == "public" or schema.startswith(("pg_", "rebuild_")) \
            or schema == "information_schema":
        raise ValueError(f"schema {schema!r} is reserved")
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                        (schema,)).fetchone():
            raise ValueError(f"schema {schema!r} exists; drop it or choose another name")
        create_aside(conn, schema, [t for g in groups for t in tables(g)], replace=False)
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
        count = 0
        for app, kinds in sources:
            for group in groups:
                if group.kinds & set(kinds):
                    count += _apply_after(app, conn, group, f"store:{app.name}", 0, progress,
                                          until=until, shards=(_aside(database_url, schema), jobs))
        _analyze(conn, schema, [t for g in groups for t in tables(g)])
        conn.execute("RESET search_path")
    return count


def _analyze(conn: psycopg.Connection[Any], schema: str, names: Sequence[str]) -> None:
    """Statistics for tables just filled, before anyone reads them: autovacuum gets to
    new tables a minute or more later, and until then the planner guesses. A month's
    daily report read right after its tables were built took p50 139 / p99 357 ms,
    against 87-97 / 148-158 once they were analyzed (docs/reports.md)."""
    for name in names:
        conn.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))


_CATCH_UP_ROUNDS = 5
_LOCK_RETRY_S = 0.02
_LOCK_PATIENCE_S = 120.0


def _lock(conn: psycopg.Connection[Any], names: tuple[str, ...]) -> None:
    """Every live table of the group, ACCESS EXCLUSIVE, or LockNotAvailable at
    once (NOWAIT). Never waiting matters twice: a reader's transaction that has
    read one table and wants another cannot deadlock with us (a plain LOCK takes
    the tables one by one and waits for each), and readers never queue behind a
    pending exclusive request."""
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE NOWAIT").format(
        sql.SQL(", ").join(sql.SQL("public.{}").format(sql.Identifier(n)) for n in names)))
_SMALL = 1_000  # events left for the locked step: a few milliseconds of applying


def _staged(conn: psycopg.Connection[Any], group: ProjectionGroup, source: str) -> int:
    """The position the copy has reached (projection_positions resolves to the copy's)."""
    return positions.read(conn, group.names[0], source)


def _apply_after(app: Application[Any], conn: psycopg.Connection[Any], group: ProjectionGroup,
                 source: str, position: int, progress: Progress | None,
                 until: datetime | None = None, shards: tuple[Connect, int] | None = None) -> int:
    """Apply the store's events after ``position`` (those that occurred at or
    before ``until``, if given) with the group's own apply; return how many were read.
    ``shards``: (connect, jobs), to apply them on that many connections at once
    (streams/shards.py), when the group's apply is per aggregate."""
    read = store_read(app, position, until=until)
    # What apply deferred (interval buckets) is done once for the whole history: a
    # bucket is recomputed once, not after every page that touched it. After a first
    # pass, its deferred indexes built, on its connections first; then the group's own
    # settle, always, for what was marked meanwhile (usually nothing).
    if shards is None:
        count = apply_pages(conn, positions.parking(group, group.apply), read(WHOLE), source,
                            progress, parker(group)).read
    else:
        connect, jobs = shards
        count = first_pass(connect, group, read, source, jobs, progress).read
        if count and _sharded(group, jobs) and group.settle_fresh is not None:
            group.settle_fresh(connect, jobs)
    if count and group.settle is not None:
        group.settle(conn, wait=True)
    return count


def first_pass(connect: Connect, group: ProjectionGroup, read: Read, source: str, jobs: int,
               progress: Progress | None = None) -> Pass:
    """Apply the history ``read`` gives to the group's empty tables (those ``connect``
    reaches first), its deferred indexes built at the end (streams/deferred_indexes.py):
    in ``jobs`` processes if its apply is per aggregate (streams/shards.py; its tables
    then take ``settle_fresh``), else on one connection."""
    apply = positions.parking(group, group.apply_fresh or group.apply)
    with deferred_indexes.deferred(connect, group.deferred_indexes, jobs):
        if _sharded(group, jobs):
            return apply_sharded(connect, group, read, source, jobs, apply, progress)
        with connect() as conn:
            return apply_pages(conn, apply, read(WHOLE), source, progress, parker(group))


def _sharded(group: ProjectionGroup, jobs: int) -> bool:
    return jobs > 1 and group.per_aggregate


def _aside(database_url: str, schema: str) -> Connect:
    """Connections that apply to the copies in ``schema`` (a shard's)."""
    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(database_url, autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
        return conn
    return connect


def rebuild(app: Application[Any], database_url: str, names: tuple[str, ...],
            progress: Progress | None = None) -> int:
    """Rebuild the named projections; return the number of events read."""
    unknown = set(names) - set(REBUILDABLE)
    if unknown:
        raise ValueError(f"unknown projection(s) {sorted(unknown)}; choose from {REBUILDABLE}")
    fold = _Fold()
    count = _fold_after(app, fold, names, progress)
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        for name in names:
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(name)))
        # TRUNCATE's locks now hold off the live appliers. What they applied since the
        # read above is in the store after the fold's position, and TRUNCATE wiped it:
        # fold it in, or their positions (ahead of the rebuild's) would skip it for good.
        count += _fold_after(app, fold, names, progress)
        for name in names:
            _WRITERS[name](cur, fold)
        for notification, error in fold.refused:
            positions.park_undecodable(conn, calls.GROUP, notification, f"store:{app.name}",
                                       error, names)
        if calls.CDR in names:
            # Rebuilt views come from complete history: no call waits on a gap.
            cur.execute("TRUNCATE call_projection_gaps")
        positions.record(cur, names, f"store:{app.name}", fold.last_position)
    return count


def _fold_after(app: Application[Any], fold: _Fold, names: tuple[str, ...],
                progress: Progress | None) -> int:
    """Fold the events stored after the fold's position; return how many were read."""
    count = 0
    for page in store_read(app, fold.last_position)(WHOLE):
        for envelope in page.events:
            fold.add(envelope, keep_events=call_events.NAME in names)
        fold.refused += page.refused
        fold.last_position = max(fold.last_position, page.last)
        count += len(page.events)
        if progress:
            progress(len(page.events))
    return count


def _write_call_events(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    with cur.copy("COPY call_events (call_id, version, occurred_at, event_id, position, type,"
                  " data, tenant) FROM STDIN") as copy:
        for e in fold.events:
            view = fold.views.get(e.subject)
            copy.write_row((e.subject, e.version, e.occurred_at, e.id, e.position, e.type,
                            jsonb(e.data), view.tenant if view else DEFAULT_TENANT))


def _write_cdr(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    columns = sql.SQL(", ").join(map(sql.Identifier, calls.COLUMNS))
    with cur.copy(sql.SQL("COPY cdr ({}) FROM STDIN").format(columns)) as copy:
        for view in fold.views.values():
            copy.write_row(calls.db_row(view))
    calls.fill_wrap_up(cur, None)


def _write_call_live(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    call_live.sync(cur, [v for v in fold.views.values() if not v.is_final])


_WRITERS: dict[str, Callable[[psycopg.Cursor[Any], _Fold], None]] = {
    call_events.NAME: _write_call_events,
    calls.CDR: _write_cdr,
    call_live.NAME: _write_call_live,
}
