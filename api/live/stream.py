"""The live feed behind `GET /v1/live/stream`: Server-Sent Events of snapshot changes.

Positions. The feed position is the sum of projection_positions: every
projection commit raises it, it never falls (except on a rebuild, see below),
and since each term only grows, two API processes reading the same sum have
read the same positions. Two processes therefore name the same state with the
same id, which is what lets a client resume on another process with
`Last-Event-ID` and no sticky session.

Views. Clients that would see the same snapshot (same tenant, role and agent)
share one `View`: on every wake-up from the `ProjectionListener` the hub reads
the feed position and, when it moved, that view's snapshot in one
repeatable-read transaction (so the two agree), and keeps the JSON Merge Patch
(RFC 7396) from the previous snapshot in a bounded ring. A change event carries
that patch; its id is the position it brings the client to. The frame is made
once per change and the same text goes to every client of the view.

Passes. A wake-up starts a pass over the views, one pass at a time (a burst of
commits folds into the next pass: the wake-up is an event, not a count).

Reading in part. Each projection commit of a runner that knows what it touched
(projections/touched.py) comes with a notification naming the positions it
covers and the ids of its queues, agents and calls. With a `PartialReads`, the
hub re-reads only those (api/live/touched.py) and keeps the rest of the view,
when the notifications it holds cover every position row the view depends on
(`PartialReads.inputs`) that moved since the view's last read; otherwise (a
writer that names nothing, a notification lost or not yet there after
`cover_s`, a row that went back) it reads the whole view, as it always does
without `PartialReads`, and every `tick_s` (what moves with the clock alone).
Either way the view's id is the feed position its transaction read, so the
events are the same whichever way it was read.

Resuming. A client whose `Last-Event-ID` is a position this process's view has
in its ring gets the patches after it, nothing else: no gap, no duplicate. Any
other position (older than the ring, from another process that coalesced
differently, or from before a rebuild) gets a fresh `snapshot` event, never an
error; so does a client that missed more patches than its queue holds (a slow
client dropped always has).

Time. Waits and times in state are sent as of `as_of` and the page counts them
on. Window figures (today, the rolling window) also move with time alone: a
call leaves the window, the longest wait of a queue grows. So every `tick_s`
without a commit the hub reads each view again and sends a `change` when a
window figure moved (nothing otherwise); that change keeps the id of the
position it was read at (no commit happened), and a client resuming from that
id gets the next one within `tick_s`. Under a steady flow of commits, a view
read in part is read whole at least every `tick_s` as well.

Slow clients. Each client has a bounded queue of frames; when it is full the
client is dropped (its stream ends) and its EventSource reconnects with its
`Last-Event-ID`. Memory per client is bounded by the queue; per view by the ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from api.auth.dependencies import Principal
from api.db import UNREACHABLE, acquire
from api.live.views import (
    UNCOVERED,
    PartialReads,
    Read,
    Rows,
    Subscriber,
    View,
    ViewKey,
    covered,
    frame,
    stream_form,
    window_figures,
)
from api.problems import DatabaseUnavailable
from projections.touched import Touched

log = logging.getLogger(__name__)

SnapshotFn = Callable[[asyncpg.Connection, Principal, datetime], Awaitable[BaseModel]]
FEED_POSITION = "SELECT COALESCE(SUM(position), 0)::bigint FROM projection_positions"
HEARTBEAT = ": heartbeat\n\n"
LOG_READS_S = 60.0  # how often the hub logs how it read its views (bench/live.py reads it)
_UNAVAILABLE: tuple[type[Exception], ...] = (*UNREACHABLE, DatabaseUnavailable)
_ROWS_AND_NOW = ("SELECT ARRAY(SELECT ROW(projection, source, position) FROM projection_positions),"
                 " now()")


class LiveHub:
    """The views of one API process and the passes that refresh them."""

    def __init__(self, pool: asyncpg.Pool, snapshot: SnapshotFn, *, history: int = 256,
                 buffer: int = 64, idle_s: float = 60.0, tick_s: float = 10.0,
                 partial: PartialReads | None = None, cover_s: float = 0.1,
                 max_touched: int = 4096) -> None:
        self._pool = pool
        self._snapshot = snapshot
        self._partial = partial
        self._history = history
        self._buffer = buffer
        self._idle_s = idle_s
        self._tick_s = tick_s
        self._cover_s = cover_s  # how long a read waits for a commit's notification
        self._max_touched = max_touched  # notifications kept per source
        self._views: dict[ViewKey, View] = {}
        self._touched: dict[str, list[Touched]] = {}  # by source, as they came
        self._telling: set[str] = set()  # the sources whose writers have said what they touched
        self._arrived = asyncio.Event()  # a notification with what it touched came
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one view change (a read applied, a view made) at a time
        self.reads = {"whole": 0, "part": 0}  # how each view was read (tests, bench)
        self._told = 0.0  # when the counts above were last logged
        self._pass_began = 0.0  # the event loop's clock

    def wake(self, payload: str = "") -> None:
        """A projection commit (api/live/notify.py): `payload` names what it touched,
        when its writer said (projections/touched.py)."""
        touched = Touched.parse(payload)
        if touched is not None:
            self._telling.add(touched.source)
            kept = self._touched.setdefault(touched.source, [])
            kept.append(touched)
            if len(kept) > self._max_touched:  # nobody reads them: a view reads whole
                del kept[:len(kept) - self._max_touched]
            self._arrived.set()
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        log.info("live feed: views read whole %d times, in part %d times",
                 self.reads["whole"], self.reads["part"])
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for view in self._views.values():
            for subscriber in list(view.subscribers):
                subscriber.close()

    @property
    def client_count(self) -> int:
        return sum(len(v.subscribers) for v in self._views.values())

    async def subscribe(self, principal: Principal, last_id: int | None) -> Subscriber:
        """A client of `principal`'s view, its queue primed with what it missed."""
        async with self._lock:
            key = ViewKey.of(principal)
            view = self._views.get(key)
            if view is None:
                read = await self._read(principal, None, whole=True)
                assert read is not None  # a whole read always reads
                view = self._views[key] = View(
                    key, principal, read.position, read.state, read.position,
                    deque(maxlen=self._history), rows=read.rows, parts=read.parts,
                    parts_state=read.state, whole_at=asyncio.get_running_loop().time())
            subscriber = Subscriber(view, self._buffer)
            missed = view.frames_after(last_id)
            if len(missed) > self._buffer:  # more than its queue holds: the whole view
                missed = [frame("snapshot", view.position, view.state)]
            for text in missed:
                subscriber.offer(text)
            view.subscribers.add(subscriber)
            view.idle_since = None
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        view = subscriber.view
        view.subscribers.discard(subscriber)
        if not view.subscribers:
            view.idle_since = asyncio.get_running_loop().time()

    async def _read(self, principal: Principal, view: View | None, *,
                    whole: bool) -> Read | None:
        """`principal`'s view in one database snapshot: in part when `view` was read
        before, `whole` is not asked and the notifications say what changed since;
        None when nothing it depends on moved (and `whole` is not asked)."""
        async with acquire(self._pool) as conn, conn.transaction(isolation="repeatable_read",
                                                                  readonly=True):
            # The first statement takes the transaction's snapshot: the rows (their
            # sum is the feed position) name exactly what is read after them; `now()`
            # is the transaction's clock, the one the snapshot wants.
            found, now = await conn.fetchrow(_ROWS_AND_NOW)
            rows: Rows = {(projection, source): int(p) for projection, source, p in found}
            if self._partial is None:
                if not whole and view is not None and rows == view.rows:
                    return None
                snapshot = await self._snapshot(conn, principal, now)
                return self._read_as(rows, snapshot, None, whole=True)
            ids: frozenset[UUID] | None = None
            if not whole and view is not None and view.parts is not None:
                moved = self._moved(view.rows, rows)
                if moved is not None and not moved:
                    return None  # what moved (if anything) is not this view's
                ids = None if moved is None else await self._ids_of(moved)
            parts = None
            if ids is not None and view is not None:
                parts = await self._partial.touched(conn, principal, now, view.parts, ids)
            if parts is None:
                ids = None
                parts = await self._partial.whole(conn, principal, now)
            elif view is not None and self._partial.restate is not None:
                state = self._partial.restate(view.parts_state, parts)
                return self._read_as(rows, state, parts, whole=False)
            return self._read_as(rows, parts.snapshot, parts, whole=ids is None)

    def _read_as(self, rows: Rows, snapshot: BaseModel | dict[str, Any], parts: Any, *,
                 whole: bool) -> Read:
        self.reads["whole" if whole else "part"] += 1
        state = (snapshot if isinstance(snapshot, dict)
                 else stream_form(snapshot.model_dump(mode="json")))
        return Read(sum(rows.values()), rows, state, parts, whole)

    def _moved(self, before: Rows, after: Rows) -> dict[tuple[str, str], tuple[int, int]] | None:
        """The rows of the view's inputs that moved, each from and to where; None if
        one went back or away (a rebuild, a restore): read it whole."""
        assert self._partial is not None  # only with PartialReads
        inputs = self._partial.inputs
        if any(row not in after for row in before if row[0] in inputs):
            return None
        moved = {}
        for row, position in after.items():
            if row[0] not in inputs:
                continue
            was = before.get(row, 0)
            if position < was:
                return None
            if position > was:
                moved[row] = (was, position)
        return moved

    async def _ids_of(self, moved: dict[tuple[str, str], tuple[int, int]]
                      ) -> frozenset[UUID] | None:
        """What the notifications say the `moved` rows' positions touched; None when
        one is not covered (its writer names nothing) or names everything (`covered`). A commit's
        notification may come a little after a read that sees it began: waits for
        it up to `cover_s` after the pass began (the transaction, and its snapshot,
        stay open); the pass's other views wait no more."""
        if any(source not in self._telling for _, source in moved):
            return None  # a writer that never says (a rebuild, an older worker): no wait
        loop = asyncio.get_running_loop()
        deadline = self._pass_began + self._cover_s
        while (ids := covered(self._touched, moved)) is UNCOVERED:
            self._arrived.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self._arrived.wait()
            except TimeoutError:
                return None
        return ids if isinstance(ids, frozenset) else None

    def _forget_touched(self) -> None:
        """Let go of the notifications every view has read past."""
        inputs = self._partial.inputs if self._partial is not None else frozenset()
        for source, kept in list(self._touched.items()):
            reached = [p for view in self._views.values()
                       for (projection, s), p in view.rows.items()
                       if s == source and projection in inputs]
            floor = min(reached, default=None)
            if floor is None:
                if not self._views:
                    del self._touched[source]  # a new view reads whole
                continue
            self._touched[source] = [t for t in kept if t.upto > floor]

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
            # that arrives as the wake-up does (stop() would wait for ever).
            try:
                async with asyncio.timeout(self._tick_s):
                    await self._wakeup.wait()
                ticked = False
            except TimeoutError:
                ticked = True  # no commit for tick_s: only time moved
            # Cleared before the pass: the pass reads after every wake-up so far.
            self._wakeup.clear()
            await self._pass(ticked)

    async def _pass(self, ticked: bool) -> None:
        try:
            await self._refresh_all(ticked)
        except _UNAVAILABLE as error:  # the listener wakes us again when it is back
            log.warning("live feed could not read the projections (%s)", error)
        except Exception:
            log.exception("live feed refresh failed")

    async def _refresh_all(self, ticked: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._pass_began = loop.time()
        for key, view in list(self._views.items()):
            now = loop.time()
            if view.idle_since is not None and now - view.idle_since > self._idle_s:
                del self._views[key]  # nobody left to resume from it
                continue
            whole = ticked or now - view.whole_at >= self._tick_s
            read = await self._read(view.principal, view, whole=whole)
            if read is None:
                continue
            async with self._lock:
                if read.whole:
                    view.whole_at = now
                self._apply(view, read, ticked)
        self._forget_touched()
        if loop.time() - self._told >= LOG_READS_S:
            self._told = loop.time()
            log.info("live feed: views read whole %d times, in part %d times",
                     self.reads["whole"], self.reads["part"])

    def _apply(self, view: View, read: Read, ticked: bool) -> None:
        """`read` into `view` and its clients."""
        view.rows, view.parts, view.parts_state = read.rows, read.parts, read.state
        position, state = read.position, read.state
        if position == view.position:
            if ticked and window_figures(state) != window_figures(view.state):
                self._send(view, frame("change", position, view.advance(position, state)))
            return
        if position < view.position:  # a rebuild reset the positions: start over
            view.ring.clear()
            view.base, view.position, view.state = position, position, state
            self._send(view, frame("snapshot", position, state))
            return
        patch = view.advance(position, state)
        if patch:
            self._send(view, frame("change", position, patch))

    @staticmethod
    def _send(view: View, text: str) -> None:
        for subscriber in list(view.subscribers):
            subscriber.offer(text)


async def sse_frames(hub: LiveHub, subscriber: Subscriber, *, heartbeat_s: float,
                     disconnected: Callable[[], Awaitable[bool]],
                     max_s: float) -> AsyncIterator[str]:
    """The text of one client's stream: its frames, a comment every `heartbeat_s`
    of silence (proxies keep the connection; the client sees the server alive),
    until it is dropped, goes away, or has streamed `max_s`: then it reconnects
    with its Last-Event-ID (nothing lost) and its credential is checked again, so
    a disabled user or a revoked key stops streaming within `max_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_s
    try:
        yield "retry: 2000\n\n"
        while (left := deadline - loop.time()) > 0:
            try:
                text = await asyncio.wait_for(subscriber.queue.get(), min(heartbeat_s, left))
            except TimeoutError:
                if await disconnected() or loop.time() >= deadline:
                    return
                yield HEARTBEAT
                continue
            if text is None:
                return
            yield text
    finally:
        hub.unsubscribe(subscriber)
