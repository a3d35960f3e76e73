"""Drop and rebuild call projections from the event store.

History is read page by page from the notification log and folded in memory
(projections.call_view), then written with COPY in one transaction: readers see
the old projection until the new one is complete. Live appliers (the in-process
runner, Faust workers) may keep running: their writes wait for the rebuild's
lock and then continue from the rebuilt rows, which are version-gated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from psycopg import sql
from psycopg.types.json import Jsonb

from domain.addressing import DEFAULT_TENANT
from projections import call_events, call_live, calls, cdr, positions
from projections.call_view import CallView, advance, start
from projections.envelope import EventEnvelope
from projections.registry import ProjectionGroup
from streams.envelopes import decode

REBUILDABLE = (call_events.NAME, cdr.NAME, call_live.NAME)
Progress = Callable[[int], object]


@dataclass
class _Fold:
    views: dict[UUID, CallView] = field(default_factory=dict)
    events: list[EventEnvelope] = field(default_factory=list)
    last_position: int = 0

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


def read_history(app: Application[Any], page_size: int = 10_000) -> Iterator[list[EventEnvelope]]:
    position = 0
    while notifications := app.recorder.select_notifications(start=position + 1, limit=page_size):
        yield decode(app, notifications)
        position = notifications[-1].id


def replay_group(app: Application[Any], database_url: str, group: ProjectionGroup,
                 progress: Progress | None = None) -> int:
    """Rebuild any projection group by replaying history through its live path.

    Slower than `rebuild` and not atomic (readers see the tables fill up), but
    it needs nothing beyond the group's own apply function.
    """
    source = f"store:{app.name}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(sql.SQL("TRUNCATE {}").format(
                sql.SQL(", ").join(map(sql.Identifier, group.names))))
            conn.execute("DELETE FROM projection_positions WHERE projection = ANY(%s)",
                         (list(group.names),))
        count = 0
        for page in read_history(app):
            group.apply(conn, page, source)
            count += len(page)
            if progress:
                progress(len(page))
    return count


def rebuild(app: Application[Any], database_url: str, names: tuple[str, ...],
            progress: Progress | None = None) -> int:
    """Rebuild the named projections; return the number of events read."""
    unknown = set(names) - set(REBUILDABLE)
    if unknown:
        raise ValueError(f"unknown projection(s) {sorted(unknown)}; choose from {REBUILDABLE}")
    fold = _Fold()
    count = 0
    for page in read_history(app):
        for envelope in page:
            fold.add(envelope, keep_events=call_events.NAME in names)
        count += len(page)
        if progress:
            progress(len(page))
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        for name in names:
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(name)))
            _WRITERS[name](cur, fold)
        if cdr.NAME in names:
            # Rebuilt views come from complete history: no call waits on a gap.
            cur.execute("TRUNCATE call_projection_gaps")
        positions.record(cur, names, f"store:{app.name}", fold.last_position)
    return count


def _write_call_events(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    with cur.copy("COPY call_events (call_id, version, occurred_at, event_id, position, type,"
                  " data, tenant) FROM STDIN") as copy:
        for e in fold.events:
            view = fold.views.get(e.subject)
            copy.write_row((e.subject, e.version, e.occurred_at, e.id, e.position, e.type,
                            Jsonb(dict(e.data)), view.tenant if view else DEFAULT_TENANT))


def _write_cdr(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    columns = sql.SQL(", ").join(map(sql.Identifier, cdr.COLUMNS))
    with cur.copy(sql.SQL("COPY cdr ({}) FROM STDIN").format(columns)) as copy:
        for view in fold.views.values():
            copy.write_row(cdr.db_row(view))
    cdr.fill_wrap_up(cur, None)


def _write_call_live(cur: psycopg.Cursor[Any], fold: _Fold) -> None:
    call_live.sync(cur, [v for v in fold.views.values() if not v.is_final])


_WRITERS: dict[str, Callable[[psycopg.Cursor[Any], _Fold], None]] = {
    call_events.NAME: _write_call_events,
    cdr.NAME: _write_cdr,
    call_live.NAME: _write_call_live,
}
