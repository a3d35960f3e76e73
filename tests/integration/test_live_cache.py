"""`GET /v1/live` serves rendered bodies from a per-process cache (api/live/cache.py),
on a real PostgreSQL with the morning of test_callcentre_projections projected:
a body is never older than a projection commit made before the request, views of
different roles, agents or tenants never share a body, and readers of one view
share one rendering. The quantum is an hour here, so only the position and the
view can make a body be rendered again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import psycopg
import pytest

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.cache import SnapshotCache
from api.live.snapshot import live_snapshot
from application.identity.model import DEFAULT_TENANT, Role
from projections import positions
from tests.integration.api_support import running_api
from tests.integration.test_live_snapshot import max_position, projected

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

__all__ = ["projected"]  # the module-scoped fixture, shared with test_live_snapshot
HOUR_S = 3600.0


def commit_position(database_url: str, position: int) -> None:
    """What a projection commit does to the feed: its position moves."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        positions.record(cur, ["callcentre_events"], "store:test", position)


def test_a_body_is_shared_until_a_commit_moves_the_position(projected: str) -> None:
    with running_api(projected) as client:
        cache = client.app.state.live_cache = SnapshotCache(live_snapshot,  # type: ignore[attr-defined]
                                                            quantum_s=HOUR_S)
        first = client.get("/v1/live")
        assert first.status_code == 200, first.text
        assert client.get("/v1/live").content == first.content  # same as_of: one rendering
        assert cache.renderings == 1
        position = max_position(projected)
        for step in (1, 2, 3):
            commit_position(projected, position + step)
            body = client.get("/v1/live").json()  # at once: no wait for any notification
            assert body["position"]["store:test"] == position + step
        assert cache.renderings == 4


def render(database_url: str, principals: list[Principal], *,
           concurrent: int = 1) -> tuple[list[dict[str, Any]], int]:
    """Each principal's body through one cache (`concurrent` readers each, at once),
    and how many renderings that took."""
    async def run() -> tuple[list[dict[str, Any]], int]:
        cache = SnapshotCache(live_snapshot, quantum_s=HOUR_S)
        async with asyncpg.create_pool(asyncpg_dsn(database_url), min_size=0,
                                       max_size=4) as pool:
            bodies = [await asyncio.gather(*(cache.body(pool, p, 900.0)
                                             for _ in range(concurrent))) for p in principals]
        assert all(len(set(same)) == 1 for same in bodies)
        return [json.loads(same[0]) for same in bodies], cache.renderings
    return asyncio.run(run())


def principal(role: Role, tenant: str = DEFAULT_TENANT, agent_key: str | None = None) -> Principal:
    return Principal("t", "user", tenant, role, "r", agent_key)


def test_roles_agents_and_tenants_never_share_a_body(projected: str) -> None:
    views = [principal(Role.SUPERVISOR), principal(Role.AGENT, agent_key="bob"),
             principal(Role.AGENT, agent_key="alice"), principal(Role.ANALYST),
             principal(Role.SUPERVISOR, "other"), principal(Role.SUPERVISOR)]
    (supervisor, bob, alice, analyst, other, again), renderings = render(projected, views)
    assert renderings == 5  # the second supervisor read is the first one's body
    assert again == supervisor
    assert [q["key"] for q in supervisor["queues"]] == ["sales", "support"]
    assert supervisor["calls"] == []
    assert supervisor["summary"] is not None
    assert [a["key"] for a in bob["agents"]] == ["bob"]
    assert [a["key"] for a in alice["agents"]] == ["alice"]
    assert (bob["queues"], bob["calls"], bob["summary"]) == ([], None, None)
    assert analyst["calls"] is None
    assert analyst["queues"]
    assert (other["tenant"], other["queues"], other["agents"]) == ("other", [], [])


def test_readers_of_one_view_share_one_rendering(projected: str) -> None:
    _, renderings = render(projected, [principal(Role.SUPERVISOR)], concurrent=20)
    assert renderings == 1


def test_a_body_late_only_for_the_clock_is_served_while_the_next_renders(projected: str) -> None:
    async def run() -> None:
        cache = SnapshotCache(live_snapshot, quantum_s=0.05, stale_s=HOUR_S)
        supervisor = principal(Role.SUPERVISOR)
        async with asyncpg.create_pool(asyncpg_dsn(projected), min_size=0, max_size=4) as pool:
            first = await cache.body(pool, supervisor, 900.0)
            await asyncio.sleep(0.1)  # past the quantum; no commit meanwhile
            assert await cache.body(pool, supervisor, 900.0) == first  # at once, not waited
            for _ in range(200):  # the rendering it started, bounded
                if cache.renderings == 2:
                    break
                await asyncio.sleep(0.05)
            assert cache.renderings == 2
            assert await cache.body(pool, supervisor, 900.0) != first  # a later as_of
    asyncio.run(run())
