"""Call projections are idempotent and order-tolerant: any delivery order, any
number of duplicates, gives the same rows as one clean in-order pass."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest

from dialtone.migrations import apply_migrations
from projections import calls
from projections.envelope import EventEnvelope

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SNAPSHOT = (
    "SELECT call_id, status, disposition, wait_s, talk_s, hold_s, hold_count, final_callee,"
    " last_version, ended_at FROM cdr ORDER BY call_id"
)


def lifecycle_envelopes(call_id: UUID, first_position: int) -> list[EventEnvelope]:
    steps: list[tuple[str, int, dict[str, object]]] = [
        ("initiated", 0, {"caller": "1001", "callee": "2001", "direction": "inbound",
                          "trunk": "pstn", "sip_call_id": f"{call_id}@h"}),
        ("routed", 1, {"target": "sip:2001@agents"}),
        ("ringing", 1, {}),
        ("answered", 4, {}),
        ("held", 10, {}),
        ("resumed", 15, {}),
        ("ended", 64, {"disposition": "answered", "hangup_cause": "normal",
                       "hangup_side": "callee", "sip_status": 200}),
    ]
    return [
        EventEnvelope(id=uuid4(), type=f"dialtone.call.{name}.v1", subject=call_id,
                      version=i + 1, position=first_position + i,
                      occurred_at=T0 + timedelta(seconds=at), data=data)
        for i, (name, at, data) in enumerate(steps)
    ]


@pytest.fixture
def conn(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    apply_migrations(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _snapshot(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(SNAPSHOT).fetchall()


def _history(calls_count: int = 5) -> list[EventEnvelope]:
    events: list[EventEnvelope] = []
    for n in range(calls_count):
        events += lifecycle_envelopes(uuid4(), first_position=1 + n * 7)
    return events


def test_in_order_history_gives_final_cdr_rows(conn) -> None:
    calls.apply_batch(conn, _history(3), "test")
    rows = _snapshot(conn)
    assert [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("ended", "answered", 4.0, 55.0, 5.0, 1)
    ] * 3


@pytest.mark.parametrize("seed", [7, 11, 23, 42, 99])
def test_duplicates_and_shuffled_batches_change_nothing(database_url: str, conn, seed: int) -> None:
    history = _history()
    calls.apply_batch(conn, history, "clean")
    expected = _snapshot(conn)
    expected_events = conn.execute("SELECT count(*) FROM call_events").fetchone()

    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("TRUNCATE cdr, call_live, call_events")
        rng = random.Random(seed)
        deliveries = history + rng.sample(history, len(history) // 2)
        rng.shuffle(deliveries)
        for start in range(0, len(deliveries), 4):
            calls.apply_batch(other, deliveries[start:start + 4], "shuffled")

    assert _snapshot(conn) == expected
    assert conn.execute("SELECT count(*) FROM call_events").fetchone() == expected_events
    assert conn.execute("SELECT count(*) FROM call_live").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM call_projection_gaps").fetchone() == (0,)


def test_event_after_a_gap_waits_until_the_gap_is_filled(conn) -> None:
    events = lifecycle_envelopes(uuid4(), first_position=1)
    calls.apply_batch(conn, events[:2], "t")
    calls.apply_batch(conn, events[3:], "t")  # version 3 (ringing) is missing
    assert conn.execute("SELECT status, last_version FROM cdr").fetchall() == [("routed", 2)]

    calls.apply_batch(conn, [events[2]], "t")
    assert conn.execute("SELECT status, last_version FROM cdr").fetchall() == [("ended", 7)]


def test_replaying_an_old_event_does_not_reopen_a_finished_call(conn) -> None:
    events = lifecycle_envelopes(uuid4(), first_position=1)
    calls.apply_batch(conn, events, "t")
    calls.apply_batch(conn, [events[3]], "t")  # a late duplicate of "answered"
    assert conn.execute("SELECT status FROM cdr").fetchall() == [("ended",)]
    assert conn.execute("SELECT count(*) FROM call_live").fetchone() == (0,)


def test_batch_records_its_position_in_the_same_transaction(conn) -> None:
    calls.apply_batch(conn, _history(2), "topic:3")
    assert conn.execute(
        "SELECT projection, position FROM projection_positions WHERE source = 'topic:3'"
        " ORDER BY projection"
    ).fetchall() == [("call_events", 14), ("call_live", 14), ("cdr", 14)]
