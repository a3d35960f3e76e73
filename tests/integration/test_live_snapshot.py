"""`GET /v1/live` and `live_snapshot` on a real PostgreSQL, over the projections
a real call-centre history gives (the morning of test_callcentre_projections):
what each role sees, the queues now, and the figures of both windows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import psycopg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.snapshot import live_snapshot
from api.schemas.live import LiveSnapshot
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.commands import tenants
from dialtone.settings import Settings
from projections import callcentre
from tests.integration.api_support import api_key, running_api
from tests.integration.morning_support import morning_database
from tests.integration.test_callcentre_projections import C1, at, history

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


@pytest.fixture(scope="module")
def projected(pg_admin_dsn: str) -> Iterator[str]:
    """One database with the morning's history projected (the module's tests only read)."""
    with morning_database(pg_admin_dsn) as url:
        yield url


def snapshot_at(database_url: str, role: Role, now: datetime, **kwargs: Any) -> LiveSnapshot:
    async def read() -> LiveSnapshot:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            principal = Principal("t", "key", DEFAULT_TENANT, role, "r", **kwargs)
            return await live_snapshot(conn, principal, now)
        finally:
            await conn.close()
    return asyncio.run(read())


def test_a_supervisor_sees_queues_agents_calls_and_the_summary(projected: str) -> None:
    live = snapshot_at(projected, Role.SUPERVISOR, at(250))
    assert live.position == {"store:test": max_position(projected)}
    assert [q.key for q in live.queues] == ["sales", "support"]
    support = live.queues[1].now
    assert (support.calls_waiting, support.oldest_wait_s) == (1, 125.0)  # C2 since 125
    assert support.agents_paused == 1
    assert support.paused_by_reason == {"missed-offers": 1}
    agents = {a.key: a for a in live.agents}
    assert agents["alice"].state == "available"
    assert agents["alice"].time_in_state_s == 20.0
    assert agents["bob"].pause_reason == "missed-offers"
    assert live.calls == []
    assert live.summary is not None
    assert live.summary.calls_waiting == 1
    assert live.summary.agents_staffed == 2


def test_an_analyst_sees_figures_but_no_live_calls(database_url: str) -> None:
    # The morning up to 115 s, while alice is on C1: there is a call to hide.
    _, events = history()
    with psycopg.connect(database_url, autocommit=True) as conn:
        callcentre.apply_batch(conn, [e for e in events if e.occurred_at <= at(115)],
                               "store:test")
    supervised = snapshot_at(database_url, Role.SUPERVISOR, at(115))
    assert {a.key: a.current_call_id for a in supervised.agents}["alice"] == C1
    live = snapshot_at(database_url, Role.ANALYST, at(115))
    assert live.calls is None
    assert live.summary is not None
    assert live.agents
    assert all(a.current_call_id is None for a in live.agents)


def test_an_agent_sees_only_themselves(projected: str) -> None:
    live = snapshot_at(projected, Role.AGENT, at(250), agent_key="bob")
    assert [a.key for a in live.agents] == ["bob"]
    assert (live.queues, live.calls, live.summary) == ([], None, None)
    assert snapshot_at(projected, Role.AGENT, at(250)).agents == []  # no agent linked


def test_get_live_answers_each_role_within_its_tenant(projected: str) -> None:
    with running_api(projected) as client:
        for role in (Role.ADMIN, Role.ANALYST, Role.AGENT):
            client.headers["Authorization"] = f"Bearer {api_key(projected, role)}"
            body = get(client, "/v1/live")
            assert body["tenant"] == DEFAULT_TENANT
            assert body["time_zone"] == "UTC"
            assert (body["calls"] is None) == (role is not Role.ADMIN)
            assert bool(body["queues"]) == (role is not Role.AGENT)
        client.headers["Authorization"] = f"Bearer {api_key(projected, Role.ADMIN, 'other')}"
        assert get(client, "/v1/live")["queues"] == []
        assert client.get("/v1/live", params={"window_s": 5}).status_code == 422


def get(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def max_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT max(position) FROM callcentre_events").fetchone()
    assert row is not None
    return int(row[0])


def test_queue_figures_of_the_morning(projected: str) -> None:
    live = snapshot_at(projected, Role.SUPERVISOR, at(250))
    sales, support = (q.today for q in live.queues)
    # C1 answered after 5 s (talk 95 + wrap-up 30); C2 moved on to support after 15 s.
    assert (sales.offered, sales.answered, sales.answered_within_sl) == (2, 1, 1)
    assert (sales.transferred_out, sales.asa_s, sales.aht_s) == (1, 5.0, 125.0)
    assert (sales.service_level, sales.longest_wait_s) == (0.5, 15.0)
    # C2 arrived from sales (still waiting: 125 s at 250); C3 abandoned after 110 s.
    assert (support.offered, support.transferred_in, support.abandoned) == (2, 1, 1)
    assert (support.abandonment_rate, support.longest_wait_s) == (0.5, 125.0)
    assert live.queues[0].window == sales.model_copy(update={"since": live.queues[0].window.since})
    assert live.summary is not None
    assert (live.summary.today.offered, live.summary.today.service_level) == (4, 0.25)


def test_agent_figures_of_the_morning(projected: str) -> None:
    agents = {a.key: a for a in snapshot_at(projected, Role.SUPERVISOR, at(250)).agents}
    alice, bob = agents["alice"], agents["bob"]
    assert (alice.handled_today, alice.aht_today_s) == (1, 125.0)
    # staffed 10 -> 250 (240 s), paused 60 s: (95 on call + 30 wrap-up) / 180
    assert alice.occupancy_today == pytest.approx(125 / 180)
    assert (bob.missed_offers_today, bob.handled_today, bob.occupancy_today) == (1, 0, 0.0)


def test_today_follows_the_zone_dialtone_tenants_zone_sets(database_url: str) -> None:
    runner = CliRunner()
    settings = Settings(database_url=database_url)
    refused = runner.invoke(tenants.command, ["zone", DEFAULT_TENANT, "Mars/Olympus"],
                            obj=settings)
    assert refused.exit_code == 2
    assert "unknown time zone" in refused.output
    result = runner.invoke(tenants.command, ["zone", DEFAULT_TENANT, "Asia/Kolkata",
                                             "--create"], obj=settings)
    assert result.exit_code == 0, result.output
    live = snapshot_at(database_url, Role.ADMIN, at(250))  # 14:34 in Kolkata (UTC+5:30)
    assert live.time_zone == "Asia/Kolkata"
    assert live.summary is not None
    assert live.summary.today.since == datetime(2025, 2, 28, 18, 30, tzinfo=UTC)
