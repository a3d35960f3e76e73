"""The fault matrix's judge can fail: reconciliation sees each kind of damage it claims to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from kafka import KafkaProducer

from devtools.simulate import lifecycles
from dialtone import bootstrap
from dialtone.migrations import apply_migrations
from projections.envelope import decode
from streams.topics import topic_for
from tests.fixtures.kafka import create_topic
from tests.fixtures.reconcile import reconcile_until, scratch_database, stored_events

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


def _history(database_url: str) -> None:
    apply_migrations(database_url)
    lifecycles(bootstrap.call_service(database_url), 5, "reconcile")
    callcentre = bootstrap.callcentre_service(database_url)
    agent = callcentre.create_agent("rec", "Rec", {"sales": 50}, occurred_at=datetime.now(UTC))
    callcentre.login(agent.id, "sip:rec@127.0.0.1", datetime.now(UTC))
    for runner in bootstrap.inprocess_runners(database_url):
        runner.catch_up()


def test_projections_equal_to_their_rebuild_reconcile_and_damage_is_shown(
    database_url: str, pg_admin_dsn: str,
) -> None:
    _history(database_url)
    clean = reconcile_until(database_url, pg_admin_dsn, timeout=5)
    assert clean.ok, clean.explain()
    assert clean.events == sum(clean.stored.values()) > 5

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM cdr WHERE call_id ="
                     " (SELECT call_id FROM cdr ORDER BY call_id LIMIT 1)")
        conn.execute("UPDATE agent_state SET state = 'paused'")
    damaged = reconcile_until(database_url, pg_admin_dsn, timeout=2)

    assert not damaged.ok
    assert len(damaged.diffs["cdr"].rebuilt_only) == 1
    assert damaged.diffs["cdr"].live_only == []
    assert len(damaged.diffs["agent_state"].live_only) == 1
    assert damaged.projection_diffs == 3
    assert "projection cdr: 0 rows only live" in damaged.explain()


@pytest.mark.kafka
def test_a_topic_missing_or_doubling_an_event_is_counted(
    database_url: str, pg_admin_dsn: str, kafka_bootstrap: str,
) -> None:
    _history(database_url)
    prefix = f"rec{uuid.uuid4().hex[:6]}."
    calls, agents = topic_for("call", prefix), topic_for("agent", prefix)
    for topic in (calls, agents):
        create_topic(kafka_bootstrap, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for app in bootstrap.event_sources(database_url):
        envelopes = decode(app, app.recorder.select_notifications(start=1, limit=1000))
        for n, envelope in enumerate(envelopes):
            topic = topic_for(envelope.kind, prefix)
            copies = 0 if n == 0 else 2 if n == 1 else 1  # the first lost, the second doubled
            for _ in range(copies):
                producer.send(topic, key=str(envelope.subject).encode(), value=envelope.to_json())
    producer.flush()
    producer.close()

    result = reconcile_until(database_url, pg_admin_dsn, timeout=2, kafka=kafka_bootstrap,
                             prefix=prefix)

    assert result.lost == 2  # the first event of each application
    assert result.doubled == 2
    assert result.projection_diffs == 0
    assert result.events == sum(len(e) for e in stored_events(database_url).values())
    assert not result.ok


def test_scratch_database_is_dropped(pg_admin_dsn: str) -> None:
    with scratch_database(pg_admin_dsn) as scratch, psycopg.connect(scratch) as conn:
        assert conn.execute("SELECT count(*) FROM cdr").fetchone() == (0,)
    with psycopg.connect(pg_admin_dsn) as conn:
        name = scratch.rsplit("/", 1)[-1]
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is None
