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

Passes. A wake-up starts a pass over the views, up to `overlap` passes at a
time (a burst of commits folds into the passes in flight: the wake-up is an
event, not a count). Passes take their database snapshots one after the other
(the first statement of each transaction, under a lock), so their order is the
order of what they saw; a pass that ends after a later one is dropped for that
view (`View.seq`), so positions never go back except by a rebuild. With
`overlap` 2 a commit that lands just after a read began need not wait for the
rest of it; but when the API process's one core is what the reads wait for (200
clients, bench/live.py at the default scale, 2026-12-03 14:49) two reads at once
each take twice as long and delivery got slower (p50 1.6 s against 0.45 s), so
the default is 1: one pass at a time, the next one right after it.

Resuming. A client whose `Last-Event-ID` is a position this process's view has
in its ring gets the patches after it, nothing else: no gap, no duplicate. Any
other position (older than the ring, from another process that coalesced
differently, or from before a rebuild) gets a fresh `snapshot` event, never an
error.

Time. Waits and times in state are sent as of `as_of` and the page counts them
on. Window figures (today, the rolling window) also move with time alone: a
call leaves the window, the longest wait of a queue grows. So every `tick_s`
without a commit the hub reads each view again and sends a `change` when a
window figure moved (nothing otherwise); that change keeps the id of the
position it was read at (no commit happened), and a client resuming from that
id gets the next one within `tick_s`.

Slow clients. Each client has a bounded queue of frames; when it is full the
client is dropped (its stream ends) and its EventSource reconnects with its
`Last-Event-ID`. Memory per client is bounded by the queue; per view by the ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from api.auth.dependencies import Principal
from api.db import UNREACHABLE, acquire
from api.problems import DatabaseUnavailable

log = logging.getLogger(__name__)

SnapshotFn = Callable[[asyncpg.Connection, Principal, datetime], Awaitable[BaseModel]]
FEED_POSITION = "SELECT COALESCE(SUM(position), 0)::bigint FROM projection_positions"
HEARTBEAT = ": heartbeat\n\n"
_UNAVAILABLE: tuple[type[Exception], ...] = (*UNREACHABLE, DatabaseUnavailable)


@dataclass(frozen=True)
class ViewKey:
    """What a snapshot depends on besides the data: who may see what."""

    tenant: str
    role: str
    agent_key: str | None

    @classmethod
    def of(cls, principal: Principal) -> ViewKey:
        return cls(principal.tenant, principal.role.value, principal.agent_key)


def frame(event: str, position: int, data: Any) -> str:
    """One SSE event; JSON never holds a raw newline, so `data` is one line."""
    return f"event: {event}\nid: {position}\ndata: {json.dumps(data, default=str)}\n\n"


# The stream's form of a view (`stream_form`): what changes with the clock alone is
# left out (the page derives it from `as_of`), and collections are objects keyed by
# id, so that a merge patch carries the entries that changed, not every list whole.
_KEYED = {"queues": "queue_id", "agents": "agent_id", "calls": "call_id"}
_CLOCK_ONLY = {"since", "until", "time_in_state_s", "duration_s"}
# Moves a little with the clock for every logged-in agent (its periods run to as_of):
# sent to 0.1 %, so it changes when it visibly does, not on every read.
_ROUNDED = {"occupancy_today": 3}


def stream_form(state: Any) -> Any:
    """`state` (a `GET /v1/live` body) as the stream carries it: `queues`, `agents`
    and `calls` keyed by their ids; windows without `since`/`until` (as_of and
    window_s give them); agents without `time_in_state_s` (as_of - state_since)
    and their occupancy to 0.1 %; calls without `duration_s` (as_of - started_at).
    Other views pass unchanged."""
    if not isinstance(state, dict):
        return state
    shaped = {}
    for key, value in state.items():
        if key in _KEYED and isinstance(value, list):
            shaped[key] = {item[_KEYED[key]]: _without_clock(item) for item in value}
        else:
            shaped[key] = _without_clock(value) if key == "summary" else value
    return shaped


def _without_clock(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: (round(v, _ROUNDED[k]) if k in _ROUNDED and isinstance(v, float)
                else _without_clock(v))
            for k, v in value.items() if k not in _CLOCK_ONLY}


def window_figures(state: Any) -> Any:
    """What of a view (in its stream form) moves with time alone and is worth a
    change: each queue's and the summary's window figures."""
    if not isinstance(state, dict):
        return None

    def figures(holder: Any) -> Any:
        if not isinstance(holder, dict):
            return None
        return {name: holder.get(name) for name in ("today", "window")}

    queues = state.get("queues")
    return {"queues": ({k: figures(q) for k, q in queues.items()}
                       if isinstance(queues, dict) else None),
            "summary": figures(state.get("summary"))}


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7396 merge patch that turns `old` into `new` (objects recurse;
    anything else, lists included, is replaced whole; a removed key is null)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


class Subscriber:
    """One connected client: a bounded queue of frames, closed when it overflows."""

    def __init__(self, view: View, buffer: int) -> None:
        self.view = view
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=buffer)
        self.dropped = False

    def offer(self, text: str) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close()  # too slow: drop it rather than grow; it reconnects and resumes

    def close(self) -> None:
        """End this client's stream: its frames are let go, its reader wakes at once."""
        self.dropped = True
        self.view.subscribers.discard(self)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass
class View:
    key: ViewKey
    principal: Principal
    position: int
    state: dict[str, Any]
    base: int  # the position of the state before the ring's oldest patch
    ring: deque[tuple[int, dict[str, Any]]]
    subscribers: set[Subscriber] = field(default_factory=set)
    idle_since: float | None = None
    seq: int = 0  # the order of the database snapshot `state` was read in (LiveHub._read)

    def frames_after(self, last_id: int | None) -> list[str]:
        """What a client that has seen `last_id` needs to reach `position`."""
        if last_id == self.position:
            return []
        if last_id is not None and (last_id == self.base or
                                    any(p == last_id for p, _ in self.ring)):
            return [frame("change", p, patch) for p, patch in self.ring
                    if p > last_id and patch]
        return [frame("snapshot", self.position, self.state)]

    def advance(self, position: int, state: dict[str, Any]) -> dict[str, Any]:
        patch: dict[str, Any] = merge_patch(self.state, state)
        if len(self.ring) == self.ring.maxlen:
            self.base = self.ring[0][0]
        self.ring.append((position, patch))
        self.position, self.state = position, state
        return patch


@dataclass(frozen=True)
class Read:
    seq: int  # the order its database snapshot was taken in
    position: int
    state: dict[str, Any]


class LiveHub:
    """The views of one API process and the passes that refresh them."""

    def __init__(self, pool: asyncpg.Pool, snapshot: SnapshotFn, *, history: int = 256,
                 buffer: int = 64, idle_s: float = 60.0, tick_s: float = 10.0,
                 overlap: int = 1) -> None:
        self._pool = pool
        self._snapshot = snapshot
        self._history = history
        self._buffer = buffer
        self._idle_s = idle_s
        self._tick_s = tick_s
        self._overlap = overlap  # passes reading at once (each on a pooled connection)
        self._views: dict[ViewKey, View] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._passes: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one view change (a read applied, a view made) at a time
        self._order = asyncio.Lock()  # database snapshots are taken one after the other
        self._seq = 0

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        for task in [*([self._task] if self._task is not None else []), *self._passes]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for view in self._views.values():
            for subscriber in list(view.subscribers):
                subscriber.close()

    @property
    def reading(self) -> int:
        """Passes in flight (at most `overlap`)."""
        return len(self._passes)

    @property
    def client_count(self) -> int:
        return sum(len(v.subscribers) for v in self._views.values())

    async def subscribe(self, principal: Principal, last_id: int | None) -> Subscriber:
        """A client of `principal`'s view, its queue primed with what it missed."""
        async with self._lock:
            key = ViewKey.of(principal)
            view = self._views.get(key)
            if view is None:
                read = await self._read(principal)
                view = self._views[key] = View(key, principal, read.position, read.state,
                                               read.position, deque(maxlen=self._history),
                                               seq=read.seq)
            subscriber = Subscriber(view, self._buffer)
            for text in view.frames_after(last_id)[-self._buffer:]:
                subscriber.offer(text)
            view.subscribers.add(subscriber)
            view.idle_since = None
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        view = subscriber.view
        view.subscribers.discard(subscriber)
        if not view.subscribers:
            view.idle_since = asyncio.get_running_loop().time()

    async def _read(self, principal: Principal) -> Read:
        async with acquire(self._pool) as conn, conn.transaction(isolation="repeatable_read",
                                                                  readonly=True):
            # One snapshot of the database, taken by this first statement: the position
            # names exactly this view; `now()` is the transaction's clock, the one
            # live_snapshot wants. Under `_order`, so a later seq saw at least as much.
            async with self._order:
                position, now = await conn.fetchrow(f"SELECT ({FEED_POSITION}), now()")
                self._seq += 1
                seq = self._seq
            snapshot = await self._snapshot(conn, principal, now)
        return Read(seq, int(position), stream_form(snapshot.model_dump(mode="json")))

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
            while len(self._passes) >= self._overlap:  # bounded: wait for one to end
                await asyncio.wait(self._passes, return_when=asyncio.FIRST_COMPLETED)
            # Cleared only now: the pass below reads after every wake-up so far.
            self._wakeup.clear()
            task = asyncio.get_running_loop().create_task(self._pass(ticked), name="live-pass")
            self._passes.add(task)
            task.add_done_callback(self._passes.discard)

    async def _pass(self, ticked: bool) -> None:
        try:
            await self._refresh_all(ticked)
        except _UNAVAILABLE as error:  # the listener wakes us again when it is back
            log.warning("live feed could not read the projections (%s)", error)
        except Exception:
            log.exception("live feed refresh failed")

    async def _refresh_all(self, ticked: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        for key, view in list(self._views.items()):
            if view.idle_since is not None and now - view.idle_since > self._idle_s:
                if self._views.get(key) is view:  # not one made since another pass let it go
                    del self._views[key]  # nobody left to resume from it
                continue
            read = await self._read(view.principal)
            async with self._lock:
                self._apply(view, read, ticked)

    def _apply(self, view: View, read: Read, ticked: bool) -> None:
        """`read` into `view` and its clients, unless a later read is there already."""
        if read.seq < view.seq:
            return  # a pass that began later saw more and has been applied
        view.seq = read.seq
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
