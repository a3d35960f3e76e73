"""Call-centre projections (agent_state, agent_state_intervals, queue_live) on
the real database: the rows a history gives, and that any delivery order with
any duplicates gives the same rows as one clean in-order pass."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.router import RoutingProcess
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from domain.addressing import Target
from domain.queue import Queue
from projections import callcentre
from projections.envelope import EventEnvelope, decode
from streams.inprocess import InProcessProjectionRunner

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
C1, C2, C3 = (UUID(int=0xC000 + n) for n in (1, 2, 3))

AGENTS = ("SELECT key, state, state_since, pause_reason, current_call_id, missed_offers,"
          " calls_handled, last_version FROM agent_state ORDER BY key")
INTERVALS = ("SELECT s.key, i.state, i.reason, i.started_at, i.ended_at, i.duration_s"
             " FROM agent_state_intervals i JOIN agent_state s USING (agent_id)"
             " ORDER BY s.key, i.started_version")
QUEUES = ("SELECT key, offered, answered, answered_within_sl, abandoned, transferred_in,"
          " transferred_out, requeued, agent_offers, answered_wait_total_s, last_version"
          " FROM queue_live ORDER BY key")
CALLS = ("SELECT q.key, c.call_id, c.position, c.priority, cardinality(c.ringing_agents)"
         " FROM queue_calls c JOIN queue_live q USING (queue_id) ORDER BY q.key, c.position")
SNAPSHOTS = (AGENTS, INTERVALS, QUEUES, CALLS,
             "SELECT queue_id, agent_id, penalty, last_offered FROM queue_members"
             " ORDER BY 1, 2")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def history() -> tuple[CallCentreService, list[EventEnvelope]]:
    """A morning in a small call centre, recorded by the real service and router
    (in memory): logins, a pause, an answered call with wrap-up, a missed offer
    with auto-pause, an abandon, a transfer, and calls still waiting."""
    now = [T0]
    service = CallCentreService()
    router = RoutingProcess(service, clock=lambda: now[0])
    sales = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0,
                                 wrap_up_s=30, offer_timeout_s=10).id
    support = service.create_queue("support", "Support", "round_robin", occurred_at=T0).id
    alice = service.create_agent("alice", "Alice", {"english": 80}, occurred_at=T0).id
    bob = service.create_agent("bob", "Bob", occurred_at=T0, auto_pause_after=1).id
    service.add_member(sales, alice, 0, T0)
    service.add_member(sales, bob, 1, T0)
    service.add_member(support, bob, 0, T0)
    service.login(alice, "sip:alice@pbx.example.com", at(10))
    service.login(bob, "sip:bob@pbx.example.com", at(12))
    service.pause(alice, "lunch", at(20))
    service.resume(alice, at(80))

    def step(seconds: float) -> None:
        now[0] = at(seconds)
        router.step()

    service.enqueue_call(sales, C1, 0, at(100))
    step(100)  # C1 -> alice
    service.accept_offer(alice, C1, at(105))
    service.enqueue_call(sales, C2, 5, at(110))
    step(110)  # C2 -> bob (penalty 1, the only one free)
    step(120)  # bob misses C2: auto-paused, C2 back at the head
    service.transfer_call(sales, C2, Target.queue(support), at(125))
    service.enqueue_call(support, C3, 0, at(130))
    service.end_agent_call(alice, C1, at(200))
    step(229)
    step(230)  # alice's wrap-up ends
    service.abandon_call(support, C3, at(240))
    envelopes = decode(service, service.recorder.select_notifications(1, 10_000))
    return service, envelopes


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    apply_migrations(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def snapshot(conn: psycopg.Connection[tuple[object, ...]]) -> list[list[tuple[object, ...]]]:
    return [conn.execute(query).fetchall() for query in SNAPSHOTS]


def test_history_gives_agent_states_intervals_and_queue_counters(conn) -> None:
    _, events = history()
    callcentre.apply_batch(conn, events, "test")

    agents = conn.execute(AGENTS).fetchall()
    assert agents == [
        ("alice", "available", at(230), None, None, 0, 1, 8),
        ("bob", "paused", at(120), "missed-offers", None, 1, 0, 4),
    ]
    intervals = conn.execute(INTERVALS).fetchall()
    assert [(k, s, r, d) for k, s, r, _, _, d in intervals] == [
        ("alice", "logged_out", None, 10.0),
        ("alice", "available", None, 10.0),
        ("alice", "paused", "lunch", 60.0),
        ("alice", "available", None, 20.0),
        ("alice", "reserved", None, 5.0),
        ("alice", "on_call", None, 95.0),
        ("alice", "wrap_up", None, 30.0),
        ("alice", "available", None, None),
        ("bob", "logged_out", None, 12.0),
        ("bob", "available", None, 98.0),
        ("bob", "reserved", None, 10.0),
        ("bob", "paused", "missed-offers", None),
    ]
    assert conn.execute(QUEUES).fetchall() == [
        ("sales", 2, 1, 1, 0, 0, 1, 1, 2, 5.0, 10),
        ("support", 2, 0, 0, 1, 1, 0, 0, 0, 0.0, 5),
    ]
    assert conn.execute(CALLS).fetchall() == [("support", C2, 1, 5, 0)]


def test_batch_records_its_position_in_the_same_transaction(conn) -> None:
    _, events = history()
    callcentre.apply_batch(conn, events[:10], "topic:1")
    rows = conn.execute("SELECT projection, position FROM projection_positions"
                        " WHERE source = 'topic:1' ORDER BY projection").fetchall()
    assert rows == [(name, events[9].position) for name in sorted(callcentre.NAMES)]


@pytest.mark.parametrize("seed", [3, 17, 29, 64, 101])
def test_duplicates_and_shuffled_batches_change_nothing(database_url: str, conn,
                                                        seed: int) -> None:
    _, events = history()
    callcentre.apply_batch(conn, events, "clean")
    expected = snapshot(conn)

    conn.execute("TRUNCATE callcentre_events, agent_state, agent_state_intervals, queue_live,"
                 " queue_members, queue_calls")
    rng = random.Random(seed)
    deliveries = events + rng.sample(events, len(events) // 2)
    rng.shuffle(deliveries)
    with psycopg.connect(database_url, autocommit=True) as other:
        for start in range(0, len(deliveries), 5):
            callcentre.apply_batch(other, deliveries[start:start + 5], "shuffled")
    callcentre.apply_batch(conn, events, "again")  # a full replay on top: still nothing new

    assert snapshot(conn) == expected


def test_event_after_a_gap_waits_until_the_gap_is_filled(conn) -> None:
    _, events = history()
    alice = next(e for e in events if e.kind == "agent" and e.data.get("key") == "alice")
    agent_events = [e for e in events if e.subject == alice.subject]
    callcentre.apply_batch(conn, agent_events[:2], "t")  # created, logged in
    callcentre.apply_batch(conn, agent_events[3:], "t")  # paused (version 3) is missing
    assert conn.execute("SELECT state, last_version FROM agent_state").fetchall() == [
        ("available", 2)]
    callcentre.apply_batch(conn, [agent_events[2]], "t")
    assert conn.execute("SELECT state, last_version FROM agent_state").fetchall() == [
        ("available", 8)]


def test_requeued_calls_projected_one_event_per_batch_keep_the_aggregates_order(conn) -> None:
    """queue_calls does not store which calls rang an agent, so each batch reloads
    the queue without it; the requeues still land where the aggregate put them."""
    service = CallCentreService()
    sales = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0).id
    agents = [service.create_agent(key, key.title(), occurred_at=T0).id for key in ("a", "b")]
    for n, agent in enumerate(agents):
        service.add_member(sales, agent, 0, T0)
        service.login(agent, f"sip:{n}@pbx.example.com", T0)
    for n, call in enumerate((C1, C2, C3), start=1):
        service.enqueue_call(sales, call, 0, at(n))
    for agent, call in zip(agents, (C1, C2), strict=True):
        service.offer_call(sales, call, [agent], at(5))
    for agent, call in zip(agents, (C1, C2), strict=True):  # C1's ring ends first
        service.miss_offer(agent, call, at(9))
    for envelope in decode(service, service.recorder.select_notifications(1, 10_000)):
        callcentre.apply_batch(conn, [envelope], "t")
    projected = conn.execute("SELECT call_id FROM queue_calls ORDER BY position").fetchall()
    assert [c for (c,) in projected] == [C1, C2, C3]
    assert [c.call_id for c in service.get(Queue, sales).calls] == [C1, C2, C3]


def test_inprocess_runner_projects_the_real_store(database_url: str) -> None:
    apply_migrations(database_url)
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0).id
        agent = service.create_agent("alice", "Alice", occurred_at=T0).id
        service.add_member(queue, agent, 0, T0)
        service.login(agent, "sip:alice@pbx.example.com", at(1))
        service.enqueue_call(queue, C1, 0, at(2))
        runner = InProcessProjectionRunner(service, database_url, [callcentre.GROUP])
        assert runner.catch_up() == 5
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT key, state FROM agent_state").fetchall() == [
            ("alice", "available")]
        assert conn.execute("SELECT key, offered FROM queue_live").fetchall() == [("sales", 1)]
        assert conn.execute("SELECT call_id, position FROM queue_calls").fetchall() == [(C1, 1)]
