"""End to end through the real stack: commands -> event store -> relay -> Kafka ->
Faust worker -> projections -> API, with the worker SIGKILLed along the way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer

from api.app import create_app
from application.calls import CallService
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections import calls
from streams.rebuild import rebuild
from streams.topics import dead_letter_topic, topic_for
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.integration.api_support import api_key

pytestmark = pytest.mark.kafka
CDR_SNAPSHOT = "SELECT * FROM cdr ORDER BY call_id"


@dataclass
class Stack:
    database_url: str
    bootstrap: str
    prefix: str
    service: CallService
    spawn: Callable[[list[str]], DialtoneProcess]

    def cdr_count(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    def snapshot(self) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(CDR_SNAPSHOT).fetchall()


@pytest.fixture
def stack(database_url: str, kafka_bootstrap: str,
          dialtone_processes: Callable[..., DialtoneProcess]) -> Stack:
    apply_migrations(database_url)
    env = pipeline_env(database_url, kafka_bootstrap)
    return Stack(database_url, kafka_bootstrap, env["DIALTONE_TOPIC_PREFIX"],
                 CallService(env=eventsourcing_env(database_url)),
                 lambda args: dialtone_processes(args, env))


def test_cdr_of_a_stored_call_is_served_by_the_api(stack: Stack) -> None:
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    [call_id] = lifecycles(stack.service, 1, "e2e")

    wait_for(lambda: stack.cdr_count() == 1, 90, "the CDR row", processes=(relay, worker))
    with TestClient(create_app(stack.database_url),
                    headers={"Authorization": f"Bearer {api_key(stack.database_url)}"}) as client:
        response = client.get(f"/v1/calls/{call_id}")
        timeline = client.get(f"/v1/calls/{call_id}/timeline")
    assert response.status_code == 200
    assert response.json()["disposition"] == "answered"
    assert [e["type"] for e in timeline.json()["events"]] == [
        f"dialtone.call.{name}.v1" for name in (
            "initiated", "routed", "ringing", "answered", "held", "resumed", "transferred",
            "ended")
    ]


def test_a_worker_started_before_any_relay_projects_the_calls_the_relay_publishes_later(
        stack: Stack) -> None:
    """Faust leaves a topic that does not exist yet out of the group's assignment until
    its next metadata refresh, minutes later: the worker creates what it reads."""
    worker = stack.spawn(["worker"])
    wait_for(lambda: "Worker]: Ready" in worker.tail(400), 90, "the worker to join its group",
             processes=(worker,))
    relay = stack.spawn(["relay"])
    lifecycles(stack.service, 1, "late relay")
    wait_for(lambda: stack.cdr_count() == 1, 90, "the CDR row", processes=(relay, worker))


def test_worker_killed_mid_stream_leaves_projections_equal_to_a_clean_rebuild(
    stack: Stack,
) -> None:
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    lifecycles(stack.service, 300, "first")
    wait_for(lambda: stack.cdr_count() > 0, 90, "the worker to start projecting",
             processes=(relay, worker))
    worker.kill()
    lifecycles(stack.service, 300, "second")
    worker = stack.spawn(["worker"])
    wait_for(lambda: stack.cdr_count() == 600, 120, "all 600 CDRs", processes=(relay, worker))
    worker.stop()
    projected = stack.snapshot()

    events = rebuild(stack.service, stack.database_url, calls.NAMES)

    assert events == 600 * EVENTS_PER_LIFECYCLE
    assert stack.snapshot() == projected


def test_the_worker_keeps_at_most_one_position_row_per_partition(stack: Stack) -> None:
    """A batch spanning partitions was named after the set of them: a row for every
    set ever batched together, which the live feed reads on every pass."""
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    lifecycles(stack.service, 120, "spread")  # over the topic's 12 partitions
    wait_for(lambda: stack.cdr_count() == 120, 90, "all 120 CDRs", processes=(relay, worker))
    with psycopg.connect(stack.database_url) as conn:
        sources = {r[0] for r in conn.execute(
            "SELECT source FROM projection_positions WHERE projection = ANY(%s)",
            (list(calls.NAMES),))}
    topic = topic_for("call", stack.prefix)
    assert sources, "no position recorded"
    assert sources <= {f"{topic}:{partition}" for partition in range(12)}


def test_poison_message_is_parked_on_the_dead_letter_topic(stack: Stack) -> None:
    topic = topic_for("call", stack.prefix)
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    lifecycles(stack.service, 1, "before")
    wait_for(lambda: stack.cdr_count() == 1, 90, "the first CDR", processes=(relay, worker))

    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    producer.send(topic, key=b"garbage", value=b"\xff not a cloudevent")
    producer.send(topic, key=b"wrong-shape", value=json.dumps({"specversion": "1.0"}).encode())
    producer.flush()
    producer.close()
    lifecycles(stack.service, 1, "after")

    wait_for(lambda: stack.cdr_count() == 2, 90, "the CDR after the poison",
             processes=(relay, worker))
    assert worker.alive()
    parked = _read_all(stack.bootstrap, dead_letter_topic(topic), expected=2)
    assert sorted(r.key for r in parked) == [b"garbage", b"wrong-shape"]
    assert all(dict(r.headers)["dialtone-error"] for r in parked)


def _read_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """The first `expected` records of `topic` (kafka-python ConsumerRecords: untyped)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=20_000)
    try:
        records = []
        for record in consumer:
            records.append(record)
            if len(records) == expected:
                break
        return records
    finally:
        consumer.close()
