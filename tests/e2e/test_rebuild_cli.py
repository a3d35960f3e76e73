"""`dialtone rebuild` drops projections and rebuilds them equal to the live ones."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import psycopg

from devtools.simulate import lifecycles
from dialtone import bootstrap
from dialtone.migrations import apply_migrations
from tests.fixtures.processes import DIALTONE

SNAPSHOTS = {
    "cdr": "SELECT * FROM cdr ORDER BY call_id",
    "call_events": "SELECT call_id, version, event_id, type, data FROM call_events"
                   " ORDER BY call_id, version",
    # Every column but updated_at (when the row was written).
    "agent_state": "SELECT agent_id, key, name, state, state_since, state_version, device_uri,"
                   " skills, missed_offers, calls_handled, last_version FROM agent_state"
                   " ORDER BY agent_id",
}


def _snapshot(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SNAPSHOTS.items()}


def test_rebuild_of_call_and_agent_projections_equals_the_live_ones(database_url: str) -> None:
    apply_migrations(database_url)
    lifecycles(bootstrap.call_service(database_url), 40, "rebuild")
    callcentre = bootstrap.callcentre_service(database_url)
    now = datetime.now(UTC)
    for key in ("alice", "bob"):
        agent = callcentre.create_agent(key, key.title(), {"sales": 50}, occurred_at=now)
        callcentre.login(agent.id, f"sip:{key}@agents.local", now)
    for runner in bootstrap.inprocess_runners(database_url):
        runner.catch_up()
    live = _snapshot(database_url)
    assert len(live["cdr"]) == 40
    assert len(live["agent_state"]) == 2

    with psycopg.connect(database_url, autocommit=True) as conn:  # damage them
        conn.execute("DELETE FROM cdr WHERE caller IS NOT NULL AND random() < 0.5")
        conn.execute("UPDATE agent_state SET state = 'paused'")
    result = subprocess.run(
        [str(DIALTONE), "rebuild", "cdr", "call_events", "agent_state"],
        env={**os.environ, "DATABASE_URL": database_url}, capture_output=True, text=True,
        timeout=120, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert _snapshot(database_url) == live
