"""The live feed (issue 10.2) over the real PostgreSQL: two API servers on one
database learn of projection commits by themselves (LISTEN/NOTIFY, migration
0012) and stream the same changes with the same ids; `Last-Event-ID` resumes on
either without gap or duplicate; an unknown position gets a snapshot; a client
too slow to read is dropped with a bounded buffer.

The view here is the projection positions themselves (what every projection
commit moves), so these tests drive the feed with `positions.record` alone; the
wallboard's own view is exercised in tests/e2e/test_wallboard_browser.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import asyncpg
import httpx2
import psycopg
import pytest
from pydantic import BaseModel

from api.app import create_app
from api.auth.dependencies import Principal
from api.auth.permissions import Permission
from api.db import asyncpg_dsn
from api.live.stream import LiveHub
from api.routes.live_stream import stream_router
from application.identity.model import Role
from dialtone.migrations import apply_migrations
from projections import positions
from tests.integration.api_support import api_key
from tests.integration.live_support import SseReader, served, wait_until

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

STREAM = "/v1/live/stream"


class Positions(BaseModel):
    positions: dict[str, int]


async def positions_view(conn: asyncpg.Connection, principal: Principal,
                         now: datetime) -> Positions:
    rows = await conn.fetch("SELECT source, max(position) AS p FROM projection_positions "
                            "GROUP BY source")
    return Positions(positions={r["source"]: r["p"] for r in rows})


def commit(database_url: str, source: str, position: int) -> None:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        positions.record(cur, ["test_projection"], source, position)


@pytest.fixture
def two_servers(database_url: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    apply_migrations(database_url)
    headers = {"Authorization": f"Bearer {api_key(database_url, Role.SUPERVISOR)}"}
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            app = create_app(database_url, extra_routers=(
                stream_router(positions_view, Permission.REPORTS_READ, heartbeat_s=0.5),))
            urls.append(stack.enter_context(served(app)))
        yield urls, headers


def test_two_servers_stream_the_same_changes_and_resume_on_each_other(
        two_servers: tuple[list[str], dict[str, str]], database_url: str) -> None:
    (a, b), headers = two_servers
    readers = [SseReader(url + STREAM, headers).start() for url in (a, b)]
    try:
        for reader in readers:
            assert reader.status == 200
            first = reader.wait_for(1)[0]
            assert (first.event, first.id, first.data) == ("snapshot", 0, {"positions": {}})
        for n, position in enumerate((5, 9, 12), start=2):
            commit(database_url, "store:x", position)
            for reader in readers:  # one commit at a time: neither server coalesces two
                reader.wait_for(n)
        on_a, on_b = ([(e.event, e.id, e.data) for e in r.events] for r in readers)
        assert on_a == on_b
        assert [e[1] for e in on_a] == [0, 5, 9, 12]
        assert on_a[-1] == ("change", 12, {"positions": {"store:x": 12}})

        # A client of A that had seen 9 goes on at B: 12 only, then what follows.
        resumed = SseReader(b + STREAM, {**headers, "Last-Event-ID": "9"}).start()
        commit(database_url, "store:y", 3)
        events = resumed.wait_for(2)
        assert [(e.event, e.id) for e in events] == [("change", 12), ("change", 15)]
        for reader in readers:
            assert reader.wait_for(5)[-1].id == 15
            assert reader.state() == {"positions": {"store:x": 12, "store:y": 3}}
        resumed.close()
    finally:
        for reader in readers:
            reader.close()


def test_a_position_the_server_does_not_keep_gets_a_snapshot_not_an_error(
        two_servers: tuple[list[str], dict[str, str]], database_url: str) -> None:
    (a, _), headers = two_servers
    commit(database_url, "store:x", 7)
    reader = SseReader(a + STREAM, {**headers, "Last-Event-ID": "3"}).start()
    try:
        assert reader.status == 200
        event = reader.wait_for(1)[0]
        assert (event.event, event.id, event.data) == (
            "snapshot", 7, {"positions": {"store:x": 7}})
        wait_until(lambda: reader.comments >= 1, 30, "a heartbeat comment")
    finally:
        reader.close()


def test_the_stream_needs_the_permission(
        two_servers: tuple[list[str], dict[str, str]], database_url: str) -> None:
    (a, _), _ = two_servers
    for headers, status in (({}, 401), (
            {"Authorization": f"Bearer {api_key(database_url, Role.AGENT)}"}, 403)):
        reader = SseReader(a + STREAM, headers).start()
        wait_until(lambda r=reader: r.ended, 30, "the refusal")  # type: ignore[misc]
        assert reader.status == status


def test_a_client_that_does_not_read_is_dropped_with_a_bounded_buffer(
        database_url: str) -> None:
    apply_migrations(database_url)
    principal = Principal("u", "user", "default", Role.SUPERVISOR, "r")

    async def scenario() -> None:
        async with asyncpg.create_pool(asyncpg_dsn(database_url), min_size=0, max_size=2) as pool:
            hub = LiveHub(pool, positions_view, buffer=3)
            hub.start()
            slow = await hub.subscribe(principal, None)  # primed with its snapshot
            for position in range(1, 8):
                await asyncio.to_thread(commit, database_url, "store:x", position)
                hub.wake()
                for _ in range(200):  # the hub's refresh, bounded
                    if slow.dropped or slow.queue.qsize() > position:
                        break
                    await asyncio.sleep(0.05)
                assert slow.queue.qsize() <= 3
            assert slow.dropped
            assert slow.queue.get_nowait() is None  # its reader ends at once
            assert hub.client_count == 0
            await hub.stop()

    asyncio.run(scenario())


def test_a_stream_ends_after_its_time_and_resumes_where_it_was(database_url: str) -> None:
    apply_migrations(database_url)
    key = api_key(database_url, Role.SUPERVISOR)
    app = create_app(database_url, extra_routers=(
        stream_router(positions_view, Permission.REPORTS_READ, max_stream_s=1.0),))
    with served(app) as url:
        commit(database_url, "store:x", 4)
        first = SseReader(url + STREAM, {"Authorization": f"Bearer {key}"}).start()
        assert first.wait_for(1)[0].id == 4
        wait_until(lambda: first.ended, 30, "the stream to end after max_stream_s")
        # The reconnection is authenticated again: a key revoked meanwhile is refused.
        again = SseReader(url + STREAM, {"Authorization": f"Bearer {key}",
                                         "Last-Event-ID": "4"}).start()
        commit(database_url, "store:x", 6)
        assert [(e.event, e.id) for e in again.wait_for(1)] == [("change", 6)]
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE api_keys SET revoked_at = now()")
        wait_until(lambda: again.ended, 30, "the stream to end again")
        # The key's state is cached a few seconds (api/auth/authenticator.py).
        wait_until(lambda: opens(url, key) == 401, 30, "the revoked key refused")


def opens(url: str, key: str) -> int:
    """The status a new stream gets (the stream itself is left at once)."""
    with httpx2.stream("GET", url + STREAM, headers={"Authorization": f"Bearer {key}"},
                      timeout=10) as response:
        return response.status_code


def test_a_commit_whose_notification_is_missed_is_sent_on_the_tick(database_url: str) -> None:
    """The fallback: without a wake-up (a notification lost, the listener away), the
    hub still reads every tick_s and sends the change."""
    apply_migrations(database_url)
    principal = Principal("u", "user", "default", Role.SUPERVISOR, "r")

    async def scenario() -> None:
        async with asyncpg.create_pool(asyncpg_dsn(database_url), min_size=0, max_size=2) as pool:
            hub = LiveHub(pool, positions_view, tick_s=0.2)
            hub.start()
            client = await hub.subscribe(principal, None)
            first = await asyncio.wait_for(client.queue.get(), 30)
            assert str(first).startswith("event: snapshot\nid: 0\n")
            await asyncio.to_thread(commit, database_url, "store:x", 5)  # no hub.wake()
            change = await asyncio.wait_for(client.queue.get(), 30)  # bounded
            assert str(change).startswith("event: change\nid: 5\n")
            await hub.stop()

    asyncio.run(scenario())
