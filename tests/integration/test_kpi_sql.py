"""The projection and kpi's SQL on a real PostgreSQL give the reference's figures
(tests/unit/kpi_reference.py) for a generated history that crosses midnight in
Brussels: delivered in shuffled batches with duplicates, and again after the
call-centre group is rebuilt from the store (`dialtone rebuild`'s replay)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import psycopg
import pytest

from api.db import asyncpg_dsn
from api.live.snapshot import agent_sums, queue_sums
from dialtone.migrations import apply_migrations
from projections import callcentre, kpi
from projections.envelope import EventEnvelope
from streams.rebuild import replay_group
from tests.unit import kpi_reference as ref
from tests.unit.test_kpi_properties import KINDS, History, Op, numbers_of, windows

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

ZONE = "Europe/Brussels"


T = TypeVar("T")


def redelivered(events: list[T]) -> list[T]:
    """The events out of order, a third of them twice (always the same shuffle)."""
    rng = random.Random(11)
    deliveries = events + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    return deliveries


def script(seed: int, length: int) -> list[Op]:
    """A reproducible run of operations (the property test's alphabet)."""
    rng = random.Random(seed)
    return [(rng.choice(KINDS), rng.randrange(8), rng.randrange(3), rng.uniform(0.5, 1800))
            for _ in range(length)]


def sql_figures(database_url: str, history: History,
                window: kpi.Window) -> tuple[dict[Any, Any], dict[UUID, dict[str, Any]]]:
    """Per queue (and None: the tenant) and per agent, the figures from kpi's SQL sums."""
    async def read() -> tuple[dict[Any, Any], dict[UUID, dict[str, Any]]]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            queues = await queue_sums(conn, "default", window)
            agents = await agent_sums(conn, "default", window)
        finally:
            await conn.close()
        per_queue: dict[Any, Any] = {
            q: kpi.queue_figures(queues.get(q, kpi.QueueSums()), window)
            for q in history.queues}
        per_queue[None] = kpi.queue_figures(sum(queues.values(), kpi.QueueSums()), window)
        per_agent = {a: _agent(agents.get(a, kpi.AgentSums())) for a in history.agents}
        return per_queue, per_agent
    return asyncio.run(read())


def _agent(sums: kpi.AgentSums) -> dict[str, Any]:
    return {"handled": sums.handled, "aht_s": kpi.agent_aht(sums),
            "occupancy": kpi.occupancy(sums), "missed_offers": sums.missed_offers}


def assert_reference(database_url: str, history: History, events: list[EventEnvelope]) -> int:
    checked = 0
    for window in windows(history, ZONE, 0.4):
        queues, agents = sql_figures(database_url, history, window)
        for queue_id, figures in queues.items():
            expected = ref.queue_figures(events, window.since, window.until, queue_id)
            assert numbers_of(figures) == pytest.approx(numbers_of(expected)), (window, queue_id)
            checked += figures["offered"]
        for agent_id, figures in agents.items():
            expected = ref.agent_figures(events, agent_id, window.since, window.until)
            assert figures == pytest.approx(expected), (window, agent_id)
    return checked


def test_sql_figures_equal_the_reference_in_any_delivery_order_and_after_rebuild(
        database_url: str) -> None:
    apply_migrations(database_url)
    start = datetime(2025, 3, 29, 22, 0, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    history = History(start)
    for op in script(seed=7, length=400):
        history.run(op)
    events = history.events()
    assert {e.name for e in events} >= {"call_answered", "call_abandoned",
                                         "call_transferred_out", "call_overflowed",
                                         "wrap_up_finished", "offer_missed"}
    deliveries = redelivered(events)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for first in range(0, len(deliveries), 7):
            callcentre.apply_batch(conn, deliveries[first:first + 7], "shuffled")
    assert assert_reference(database_url, history, events) > 0

    replay_group(history.service, database_url, callcentre.GROUP)
    assert assert_reference(database_url, history, events) > 0
