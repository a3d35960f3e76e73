"""What makes `GET /v1/live` cheap: each API process keeps the last rendered body
of each view and serves those bytes while they are still right.

A body is right for a reader when

* it was rendered for the same view: tenant, role and agent (`ViewKey`: what
  a snapshot shows follows exactly these, api/live/snapshot.py) and window;
* it reflects the feed position the reader reads first (one indexed sum over
  projection_positions, the stream's ids): so nobody gets a body older than
  a commit that happened before their request, whichever process projected it
  or told them about it;
* it is younger than `quantum_s` (the time-driven values: waits, time in
  state, the windows' ends; the page counts them on from `as_of` anyway).
  Up to `stale_s` older than that it is still served, while the next one is
  rendered in the background (readers do not wait for the clock's sake; they
  do wait when the position moved).

Single flight: readers of one view that find no right body wait for one
rendering, never more than one at a time per view; a rendering is kept by its
readers only if it reflects the position each of them read (else the next one
serves them all). The rendering runs as its own task, so a reader that goes
away does not cancel it for the others.

Memory: one body per view and window rendered within `quantum_s + stale_s`
(older ones are dropped on the next rendering), at most `max_views`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from api.auth.dependencies import Principal
from api.db import acquire
from api.live.stream import FEED_POSITION
from api.live.views import ViewKey

Render = Callable[[asyncpg.Connection, Principal, datetime, float], Awaitable[BaseModel]]
QUANTUM_S = 1.0


@dataclass(frozen=True)
class RenderedBody:
    position: int  # the feed position the rendering read, in its own transaction
    rendered_at: float  # the event loop's clock
    content: bytes


@dataclass(frozen=True)
class CacheKey:
    view: ViewKey
    window_s: float


class SnapshotCache:
    """The rendered bodies of one API process (see the module's docstring)."""

    def __init__(self, render: Render, *, quantum_s: float = QUANTUM_S,
                 stale_s: float = QUANTUM_S, max_views: int = 1024) -> None:
        self._render = render
        self._quantum_s = quantum_s
        self._stale_s = stale_s
        self._max_views = max_views
        self._bodies: dict[CacheKey, RenderedBody] = {}
        self._flights: dict[CacheKey, asyncio.Task[RenderedBody]] = {}
        self.renderings = 0  # how many snapshots were computed (tests, metrics)

    async def body(self, pool: asyncpg.Pool, principal: Principal, window_s: float) -> bytes:
        """The JSON of `principal`'s snapshot, as fresh as the feed position now."""
        async with acquire(pool) as conn:
            position: int = await conn.fetchval(FEED_POSITION)
        key = CacheKey(ViewKey.of(principal), window_s)
        loop = asyncio.get_running_loop()
        waited = False
        while True:
            body = self._bodies.get(key)
            if body is not None and body.position == position:
                age = loop.time() - body.rendered_at
                if age < self._quantum_s:
                    return body.content
                if age < self._quantum_s + self._stale_s:
                    # Right but for the clock: serve it, and render the next one meanwhile.
                    self._start(pool, principal, key)
                    return body.content
            flight = self._flights.get(key)
            after_read = flight is None or waited  # it reads after this reader did
            if flight is None:
                flight = self._start(pool, principal, key)
            # shield: a reader cancelled (client gone) leaves the rendering to the others
            body = await asyncio.shield(flight)
            if after_read or body.position >= position:
                return body.content
            waited = True  # it began before the commit this reader saw: the next one

    def _start(self, pool: asyncpg.Pool, principal: Principal,
               key: CacheKey) -> asyncio.Task[RenderedBody]:
        """The view's rendering in flight, started if there is none."""
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = asyncio.get_running_loop().create_task(
                self._rendering(pool, principal, key), name="live-render")
            # Nobody may await one started for a stale read: its failure is logged there.
            flight.add_done_callback(lambda t: t.cancelled() or t.exception())
        return flight

    async def _rendering(self, pool: asyncpg.Pool, principal: Principal,
                         key: CacheKey) -> RenderedBody:
        try:
            async with acquire(pool) as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
                # One database snapshot: the position names exactly what is rendered.
                position, now = await conn.fetchrow(f"SELECT ({FEED_POSITION}), now()")
                snapshot = await self._render(conn, principal, now, key.window_s)
            self.renderings += 1
            body = RenderedBody(int(position), asyncio.get_running_loop().time(),
                        snapshot.model_dump_json().encode())
            self._keep(key, body)
            return body
        finally:
            self._flights.pop(key, None)

    def _keep(self, key: CacheKey, body: RenderedBody) -> None:
        kept = self._bodies.get(key)
        if kept is not None and kept.rendered_at > body.rendered_at:
            return
        stale = body.rendered_at - self._quantum_s - self._stale_s
        for old in [k for k, b in self._bodies.items() if b.rendered_at < stale]:
            del self._bodies[old]
        while len(self._bodies) >= self._max_views:
            del self._bodies[next(iter(self._bodies))]
        self._bodies[key] = body
