"""An event a projection cannot apply is parked and passed over: it never stops
the in-process runner (issue 16: an agent named with U+0000 froze the agent and
queue views for good)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from application.callcentre import CallCentreService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections import callcentre, calls
from projections.positions import count_parked
from streams.inprocess import InProcessProjectionRunner

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POISON_NAME = "Mallory\x00Evil"


@pytest.fixture
def service(database_url: str) -> CallCentreService:
    apply_migrations(database_url)
    return CallCentreService(env=eventsourcing_env(database_url))


def _runner(service: CallCentreService, database_url: str) -> InProcessProjectionRunner:
    return InProcessProjectionRunner(service, database_url, [calls.GROUP, callcentre.GROUP])


def test_agent_named_with_nul_is_parked_and_later_events_still_project(
    service: CallCentreService, database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    alice = service.create_agent("alice", "Alice", occurred_at=T0).id
    service.login(alice, "sip:alice@pbx.example.com", T0 + timedelta(seconds=1))
    _runner(service, database_url).catch_up()
    # Stored through the application service: the API refuses such a name, but
    # events already stored (or stored by another client) must not stop anything.
    mallory = service.create_agent("mallory", POISON_NAME, occurred_at=T0).id
    service.pause(alice, "lunch", T0 + timedelta(seconds=2))
    bob = service.create_agent("bob", "Bob", occurred_at=T0 + timedelta(seconds=3)).id

    assert _runner(service, database_url).catch_up() == 3
    assert _runner(service, database_url).catch_up() == 0  # moved past it for good

    with psycopg.connect(database_url) as conn:
        agents = conn.execute("SELECT key, state, pause_reason FROM agent_state"
                              " ORDER BY key").fetchall()
        parked = conn.execute(
            "SELECT projection, source, aggregate_id, type, error, payload->'data'->>'name'"
            " FROM projection_dead_letters").fetchall()
        counts = count_parked(conn)
        [(parked_position,)] = conn.execute(
            "SELECT position FROM projection_dead_letters").fetchall()
    assert agents == [("alice", "paused", "lunch"), ("bob", "logged_out", None)]
    assert bob != mallory
    [(projection, source, aggregate_id, event_type, error, name)] = parked
    assert (projection, source, aggregate_id, event_type) == (
        "callcentre_events", f"store:{service.name}", mallory, "dialtone.agent.created.v1")
    assert "UntranslatableCharacter" in error
    assert name == "Mallory\\u0000Evil"  # the character, written out as text
    assert counts == {"callcentre_events": 1}
    [line] = [r for r in caplog.records if "parked event" in r.getMessage()]
    assert line.levelname == "ERROR"
    assert (line.aggregate_id, line.position) == (str(mallory), parked_position)


def test_runner_thread_keeps_projecting_past_a_poison_event(
    service: CallCentreService, database_url: str,
) -> None:
    service.create_agent("mallory", POISON_NAME, occurred_at=T0)
    runner = _runner(service, database_url)
    runner.start()
    try:
        carol = service.create_agent("carol", "Carol", occurred_at=T0).id
        service.login(carol, "sip:carol@pbx.example.com", T0 + timedelta(seconds=1))
        with psycopg.connect(database_url, autocommit=True) as conn:
            state = None
            for _ in range(200):  # bounded: 20 s at most
                row = conn.execute("SELECT state FROM agent_state WHERE key = 'carol'"
                                   ).fetchone()
                state = row[0] if row else None
                if state == "available":
                    break
                conn.execute("SELECT pg_sleep(0.1)")
            assert state == "available"
            assert count_parked(conn) == {"callcentre_events": 1}
    finally:
        runner.stop()
