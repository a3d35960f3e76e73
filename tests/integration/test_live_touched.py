"""The live feed reading only what a change touched (api/live/touched.py, the hub's
PartialReads) on a real PostgreSQL, over the morning of test_callcentre_projections:
after every event of it, a read in part equals a whole read at the same instant; a
change to one queue re-reads that queue only, one to an agent the queues it is a
member of; the hub reads in part when the commits' notifications say what they
touched, and whole when they do not or name everything."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
import pytest

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.notify import ProjectionListener
from api.live.snapshot import LiveParts, live_parts, live_snapshot
from api.live.stream import LiveHub
from api.live.touched import PARTS, read_touched, restate
from api.live.views import Subscriber, stream_form
from api.schemas.live import LiveSnapshot
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.migrations import apply_migrations
from projections import callcentre, positions
from projections.envelope import EventEnvelope
from projections.touched import CHANNEL, Touched, touched_ids
from tests.integration.test_callcentre_projections import at, history

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

NOW = at(300)  # after the whole morning: every read of a test at this one instant
SOURCE = "store:test"
PRINCIPALS = [Principal("t", "key", DEFAULT_TENANT, Role.SUPERVISOR, "r"),
              Principal("t", "key", DEFAULT_TENANT, Role.ANALYST, "r"),
              Principal("t", "key", DEFAULT_TENANT, Role.AGENT, "r", agent_key="bob")]


def project(database_url: str, events: Sequence[EventEnvelope], *, say: Touched | None) -> None:
    """Apply `events` as a runner does, with `say` sent in the same transaction."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        if say is not None:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, say.payload()))
        callcentre.apply_batch(conn, events, SOURCE)


def test_after_every_event_a_read_in_part_equals_a_whole_read(database_url: str) -> None:
    apply_migrations(database_url)
    _, events = history()

    async def scenario() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            parts = [await live_parts(conn, p, NOW) for p in PRINCIPALS]
            states = [form(p.snapshot) for p in parts]
            for event in events:
                await asyncio.to_thread(project, database_url, [event], say=None)
                ids = touched_ids([event], callcentre.KINDS)
                assert ids is not None
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    for n, principal in enumerate(PRINCIPALS):
                        part = await read_touched(conn, principal, NOW, parts[n], ids)
                        whole = await live_parts(conn, principal, NOW)
                        assert part is not None
                        assert part.snapshot == whole.snapshot, (event.type, principal.role)
                        assert (part.sums, part.oldest) == (whole.sums, whole.oldest)
                        # What the stream sends, made from the previous one and what changed.
                        states[n] = restate(states[n], part)
                        assert states[n] == form(whole.snapshot)
                        parts[n] = part
            assert parts[0].snapshot.queues[1].now.calls_waiting == 1  # C2 waits in support
        finally:
            await conn.close()

    asyncio.run(scenario())


def form(snapshot: LiveSnapshot) -> dict[str, Any]:
    shaped: dict[str, Any] = stream_form(snapshot.model_dump(mode="json"))
    return shaped


def stale(parts: LiveParts) -> LiveParts:
    """`parts` with every queue and agent renamed: what is read again is named again."""
    old = parts.snapshot
    snapshot = old.model_copy(update={
        "queues": [q.model_copy(update={"name": "stale"}) for q in old.queues],
        "agents": [a.model_copy(update={"name": "stale"}) for a in old.agents]})
    return LiveParts(snapshot, parts.windows, parts.sums, parts.oldest)


def names(parts: LiveParts) -> dict[str, str]:
    return ({q.key: q.name for q in parts.snapshot.queues}
            | {a.key: a.name for a in parts.snapshot.agents})


def test_a_change_re_reads_what_it_touched_only(database_url: str) -> None:
    apply_migrations(database_url)
    _, events = history()
    first_call = next(n for n, e in enumerate(events) if e.name == "call_enqueued")
    project(database_url, events[:first_call], say=None)  # queues, agents, no call yet

    async def touching(conn: asyncpg.Connection, *keys: str) -> dict[str, str]:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            whole = await live_parts(conn, PRINCIPALS[0], NOW)
            ids = ({q.key: q.queue_id for q in whole.snapshot.queues}
                   | {a.key: a.agent_id for a in whole.snapshot.agents})
            part = await read_touched(conn, PRINCIPALS[0], NOW, stale(whole),
                                      frozenset(ids[k] for k in keys))
        assert part is not None
        return names(part)

    async def scenario() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            # One queue: that queue, no other queue, no agent.
            assert await touching(conn, "support") == {
                "sales": "stale", "support": "Support", "alice": "stale", "bob": "stale"}
            # An agent in two queues: both (each counts its members by state).
            assert await touching(conn, "bob") == {
                "sales": "Sales", "support": "Support", "alice": "stale", "bob": "Bob"}
            assert await touching(conn, "alice") == {
                "sales": "Sales", "support": "stale", "alice": "Alice", "bob": "stale"}
            # Nothing: only what moves with the clock (and the summary, from the sums).
            assert set((await touching(conn)).values()) == {"stale"}
            # A queue with a call waiting is read at every change: its waits grow.
            await asyncio.to_thread(project, database_url, events[first_call:], say=None)
            assert await touching(conn, "sales") == {
                "sales": "Sales", "support": "Support", "alice": "stale", "bob": "stale"}
        finally:
            await conn.close()

    asyncio.run(scenario())


async def next_frame(client: Subscriber) -> dict[str, Any]:
    text = await asyncio.wait_for(client.queue.get(), 30)  # bounded
    assert text is not None
    lines = dict(line.split(": ", 1) for line in text.strip().split("\n"))
    return {"event": lines["event"], "id": int(lines["id"])}


def feed_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT COALESCE(SUM(position), 0) FROM projection_positions"
                           ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_hub_reads_in_part_when_told_what_changed_and_whole_otherwise(
        database_url: str) -> None:
    apply_migrations(database_url)
    _, events = history()
    head, rest = events[:20], events[20:]

    async def scenario() -> None:
        listener = ProjectionListener(database_url)
        async with asyncpg.create_pool(asyncpg_dsn(database_url), min_size=0, max_size=2) as pool:
            hub = LiveHub(pool, live_snapshot, partial=PARTS, tick_s=3600)
            listener.subscribe(hub.wake)
            hub.start()
            listener.start()
            await asyncio.wait_for(listener.connected.wait(), 30)
            client = await hub.subscribe(PRINCIPALS[0], None)
            assert await next_frame(client) == {"event": "snapshot", "id": 0}

            async def step(batch: Sequence[EventEnvelope], say: Touched | None,
                           read: str) -> None:
                before = dict(hub.reads)
                await asyncio.to_thread(project, database_url, batch, say=say)
                position = await asyncio.to_thread(feed_position, database_url)
                assert await next_frame(client) == {"event": "change", "id": position}
                assert hub.reads[read] == before[read] + 1, hub.reads

            def told(batch: Sequence[EventEnvelope], ids: frozenset[UUID] | None,
                     ) -> Touched:
                with psycopg.connect(database_url) as conn:
                    after = positions.read(conn, callcentre.NAMES[0], SOURCE)
                return Touched(SOURCE, after, max(e.position for e in batch), ids)

            # Told what the commit touched: read in part.
            await step(head, told(head, touched_ids(head, callcentre.KINDS)), "part")
            # Told nothing (a writer without notifications): read whole, after cover_s.
            await step(rest[:3], None, "whole")
            # Told "everything" (ids that did not fit in a notification): read whole.
            await step(rest[3:6], told(rest[3:6], None), "whole")
            # And in part again.
            await step(rest[6:], told(rest[6:], touched_ids(rest[6:], callcentre.KINDS)),
                       "part")
            # What the client was sent is what a whole read gives (the clock aside).
            view = next(iter(hub._views.values()))
            async with pool.acquire() as conn:
                whole = await live_snapshot(conn, PRINCIPALS[0], view.parts.snapshot.as_of)
            assert view.state == stream_form(whole.model_dump(mode="json"))
            await listener.stop()
            await hub.stop()

    asyncio.run(scenario())
