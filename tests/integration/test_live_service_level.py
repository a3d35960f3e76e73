"""The service level over the day per 15 minutes (GET /v1/live/service-level), on a
real PostgreSQL with the morning of test_callcentre_projections projected: the
buckets add up to today's figures and a bucket's service level is the one
`GET /v1/live` gives for the same calls (one formula, projections/kpi.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from api.db import asyncpg_dsn
from api.live.service_level import service_level_buckets
from api.schemas.live import QueueServiceLevel
from application.identity.model import DEFAULT_TENANT, Role
from projections import kpi
from tests.integration.api_support import api_key, running_api
from tests.integration.test_callcentre_projections import at
from tests.integration.test_live_snapshot import projected, snapshot_at

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

__all__ = ["projected"]  # the module-scoped fixture, shared with test_live_snapshot


def buckets(database_url: str, window: kpi.Window,
            queue: str | None = None) -> list[QueueServiceLevel]:
    async def read() -> list[QueueServiceLevel]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await service_level_buckets(conn, DEFAULT_TENANT, window, queue)
        finally:
            await conn.close()
    return asyncio.run(read())


def test_the_buckets_of_the_morning_add_up_to_today(projected: str) -> None:
    now = at(250)  # 09:04:10 UTC: the morning is in the day's 37th bucket
    today = kpi.today(now, "UTC")
    queues = buckets(projected, today)
    live = {q.key: q.today for q in snapshot_at(projected, Role.SUPERVISOR, now).queues}
    assert [q.key for q in queues] == ["sales", "support"]
    for queue in queues:
        assert len(queue.buckets) == 37
        assert queue.buckets[0].since == datetime(2025, 3, 1, tzinfo=UTC)
        busy = queue.buckets[36]
        assert busy.since == datetime(2025, 3, 1, 9, tzinfo=UTC)
        figures = live[queue.key]
        assert busy.service_level == figures.service_level
        assert sum(b.offered for b in queue.buckets) == figures.offered
        assert sum(b.answered_within_sl for b in queue.buckets) == figures.answered_within_sl
        assert sum(b.short_abandoned for b in queue.buckets) == figures.short_abandoned
        assert all(b.service_level is None for b in queue.buckets[:36])
    assert queues[0].buckets[36].service_level == 0.5  # sales: 1 within T of 2 offered
    assert [q.key for q in buckets(projected, today, "support")] == ["support"]


def test_the_route_follows_the_role_and_the_queue(projected: str) -> None:
    with running_api(projected, role=Role.SUPERVISOR) as client:
        body = client.get("/v1/live/service-level").json()
        assert [q["key"] for q in body["queues"]] == ["sales", "support"]
        assert body["bucket_s"] == 900
        assert body["since"] <= body["as_of"] < body["day_until"]
        assert len(body["queues"][0]["buckets"]) >= 1  # today's, so far
        one = client.get("/v1/live/service-level", params={"queue": "sales"}).json()
        assert [q["key"] for q in one["queues"]] == ["sales"]
        client.headers["Authorization"] = f"Bearer {api_key(projected, Role.AGENT)}"
        assert client.get("/v1/live/service-level").json()["queues"] == []
