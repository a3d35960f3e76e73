"""examples/kafka_consumer.py against the real broker: it reads what `dialtone
relay` published on every topic it is given, validates each message against
the published schemas, prints one line per event, and reports (exit 1) a
message that does not match its schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaProducer

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from projections.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER
from streams.topics import topic_for
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for

pytestmark = pytest.mark.kafka
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_consumer.py"


def test_example_consumer_validates_every_event_and_reports_a_bad_one(
    database_url: str, kafka_bootstrap: str,
    dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    apply_migrations(database_url)
    env = pipeline_env(database_url, kafka_bootstrap)
    prefix = env["DIALTONE_TOPIC_PREFIX"]
    relay = dialtone_processes(["relay"], env)
    with CallService(env=eventsourcing_env(database_url)) as calls, \
            CallCentreService(env=eventsourcing_env(database_url)) as centre:
        [call_id] = lifecycles(calls, 1, "example")
        centre.create_agent("alice", "Alice", occurred_at=datetime.now(UTC))
        heads = {app.name: app.recorder.max_notification_id() or 0 for app in (calls, centre)}
    stored = EVENTS_PER_LIFECYCLE + 1
    wait_for(lambda: _positions(database_url, heads) == heads, 90,
             "the relay to publish both sources", processes=(relay,))
    bad = {"specversion": "1.0", "id": "not-a-uuid", "type": "dialtone.call.ended.v1"}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic_for("call", prefix), key=str(call_id).encode(),
                  value=json.dumps(bad).encode(),
                  headers=[(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())])
    producer.flush()
    producer.close()

    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", kafka_bootstrap, "--prefix", prefix,
         "--topics", "calls,agents", "--group", f"{prefix}example",
         "--max-messages", str(stored + 1), "--idle-timeout", "30"],
        capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 1, done.stderr  # the bad message
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(events) == len({e["id"] for e in events}) == stored
    assert {e["type"].split(".")[1] for e in events} == {"call", "agent"}
    [reported] = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert reported["topic"] == topic_for("call", prefix)
    assert "id: 'not-a-uuid' is not a 'uuid'" in reported["problems"], reported


def _positions(database_url: str, heads: dict[str, int]) -> dict[str, int]:
    """How far the relay has published each event source (capped at its head)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT application, position FROM relay_positions").fetchall()
    return {name: min(int(position), heads[name]) for name, position in rows if name in heads}
