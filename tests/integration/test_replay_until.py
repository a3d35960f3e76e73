"""`dialtone replay --until T --schema NAME` on a real PostgreSQL (issue 11 §5):
every projection as of T in a schema of its own; the live tables untouched."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from click.testing import CliRunner

from dialtone import composition
from dialtone.commands import replay
from dialtone.settings import Settings
from projections import callcentre, interval_buckets
from projections.registry import tables
from streams.rebuild import replay_until
from tests.integration.test_rebuild_swap import fresh, generated, never_analyzed, project, rows

__all__ = ["fresh"]  # the fixture, shared


def test_the_schema_holds_the_projections_as_of_t_and_the_live_tables_stay(
        fresh: Callable[[], str]) -> None:
    database_url, reference = fresh(), fresh()
    history = generated(1200)
    project(database_url, history)
    live = rows(database_url)
    events = history.events()
    until = events[len(events) // 2].occurred_at  # mid-morning
    assert events[-1].occurred_at > until
    read = replay_until([(history.service, callcentre.KINDS)], database_url,
                        composition.PROJECTION_GROUPS, until, "audit")
    assert read == len(events)
    assert rows(database_url) == live  # untouched
    with psycopg.connect(reference, autocommit=True) as conn:  # a rebuild, filtered to T
        callcentre.apply_batch(conn, [e for e in events if e.occurred_at <= until], "ref")
        interval_buckets.refresh_dirty(conn)
    audit = rows(database_url, "audit")
    assert audit == rows(reference)
    assert audit["queue_visits"]  # something to compare
    assert audit["callcentre_events"] != live["callcentre_events"]  # and it is not the live one
    with psycopg.connect(database_url) as conn:
        made = {name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'audit'").fetchall()}
    every = {t for g in composition.PROJECTION_GROUPS for t in tables(g)}
    assert made == every | {"projection_positions"}  # the call tables too (empty here)
    assert never_analyzed(database_url, "audit", sorted(every)) == []  # ready to be queried


def test_the_command(database_url: str) -> None:
    runner = CliRunner()
    settings = Settings(database_url=database_url)
    name = f"audit_{uuid.uuid4().hex[:8]}"
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    refused = {
        (datetime.now(UTC) + timedelta(hours=1)).isoformat(): "in the future",
        "2026-03-02T09:30:00": "no offset",
        "yesterday": "not an ISO 8601 instant",
    }
    for until, why in refused.items():
        result = runner.invoke(replay.command, ["--until", until, "--schema", name], obj=settings)
        assert result.exit_code == 2, result.output
        assert why in result.output
    for schema in ("public", "Bad-Name"):
        result = runner.invoke(replay.command, ["--until", past, "--schema", schema],
                               obj=settings)
        assert result.exit_code == 2, result.output
    result = runner.invoke(replay.command, ["--until", past, "--schema", name], obj=settings)
    assert result.exit_code == 0, result.output
    assert f"into schema {name}" in result.output
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                            (name,)).fetchone() == (len(
                                {t for g in composition.PROJECTION_GROUPS for t in tables(g)})
                                + 1,)
    again = runner.invoke(replay.command, ["--until", past, "--schema", name], obj=settings)
    assert again.exit_code == 2
    assert "exists" in again.output
