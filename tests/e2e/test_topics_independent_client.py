"""Every topic through the real broker, read by clients that are not dialtone's.

Calls go through SIP (sipp -> a real B2BUA worker -> sipp), agents, queues, IVR
menus, numbers and dialplans through the HTTP API; `dialtone relay` publishes.
Debian's kcat (librdkafka, read_committed) reads every topic back: each message
must validate against its published JSON Schema, carry the CloudEvents
attributes and content-type header, be keyed by its aggregate id, and come in
rising `sequence` per key; no id twice, and exactly the stored events. Then
examples/kafka_consumer.py (kafka-python, a consumer group) reads the same
topics: every stored event once; run again after a message that breaks the
schema, it resumes from its committed offsets and reports just that one.

One test rather than two: the relay's start-up (topics, transactions) is most
of the cost, and both readers need the same published history.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import psycopg
import pytest
from eventsourcing.application import Application
from kafka import KafkaProducer

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, event_id
from streams.schemas import AGGREGATES, published_schema
from streams.topics import topic_for
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.sip import Sipp, StartWorker, free_udp_port, route_to
from tests.integration.callcentre_api_support import Api, open_api

pytestmark = [pytest.mark.kafka, pytest.mark.sip]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_consumer.py"
CLOUDEVENTS_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time",
                          "datacontenttype", "sequence", "aggregateversion", "data")


def test_every_topic_read_by_kcat_and_by_the_example_consumer(
    database_url: str, kafka_bootstrap: str, b2bua: StartWorker, sipp: Sipp,
    dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    apply_migrations(database_url)
    env = pipeline_env(database_url, kafka_bootstrap)
    prefix = env["DIALTONE_TOPIC_PREFIX"]
    relay = dialtone_processes(["relay"], env)
    uas_port = free_udp_port()
    worker = b2bua(route_to(uas_port))
    for _ in range(2):  # two calls through SIP
        sipp.assert_a_call_works(worker.port, uas_port)
    with open_api(database_url) as api:
        _configure_every_kind(api)
    sources = [CallService(env=eventsourcing_env(database_url)),
               CallCentreService(env=eventsourcing_env(database_url))]
    wait_for(lambda: all(_relayed(database_url, app) for app in sources), 90,
             "the relay to publish every stored event", processes=(relay,))

    with ThreadPoolExecutor(len(AGGREGATES)) as pool:  # one kcat per topic, side by side
        read = {kind: pool.submit(_kcat, kafka_bootstrap, topic_for(kind, prefix))
                for kind in AGGREGATES}
        records = {kind: future.result() for kind, future in read.items()}

    assert all(records.values()), {k: len(v) for k, v in records.items()}
    for kind, topic_records in records.items():
        _check_topic(kind, topic_records)
    stored = sorted(_stored_ids(sources))
    published_ids = [r["value"]["id"] for rs in records.values() for r in rs]
    assert len(published_ids) == len(set(published_ids))  # no id twice
    assert sorted(published_ids) == stored  # exactly what was stored
    for app in sources:
        app.close()

    consumed = _example_consumer(kafka_bootstrap, prefix, len(stored))
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(json.loads(line)["id"] for line in consumed.stdout.splitlines()) == stored

    _produce_bad_call_event(kafka_bootstrap, topic_for("call", prefix))
    again = _example_consumer(kafka_bootstrap, prefix, 1)
    assert (again.returncode, again.stdout) == (1, "")  # resumed after what it handled
    [reported] = [json.loads(line) for line in again.stderr.splitlines()
                  if line.startswith("{")]
    assert reported["topic"] == topic_for("call", prefix)
    assert "id: 'not-a-uuid' is not a 'uuid'" in reported["problems"], reported


def _example_consumer(bootstrap: str, prefix: str,
                      max_messages: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--bootstrap", bootstrap, "--prefix", prefix,
         "--group", f"{prefix}example", "--max-messages", str(max_messages),
         "--idle-timeout", "30"],
        capture_output=True, text=True, timeout=120, check=False)


def _produce_bad_call_event(bootstrap: str, topic: str) -> None:
    """A message with the CloudEvents header whose value breaks the schema."""
    bad = {"specversion": "1.0", "id": "not-a-uuid", "type": "dialtone.call.ended.v1"}
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, key=b"bad", value=json.dumps(bad).encode(),
                  headers=[(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())])
    producer.flush()
    producer.close()


def _configure_every_kind(api: Api) -> None:
    """Agents, queues, IVR menus, numbers and dialplans, created and changed."""
    api.ok("POST", "/v1/agents", 201, json={"key": "alice", "name": "Alice",
                                            "skills": {"english": 80}})
    api.ok("POST", "/v1/queues", 201, json={"key": "sales", "name": "Sales"})
    api.ok("PUT", "/v1/queues/sales/members/alice", json={"penalty": 0})
    api.ok("POST", "/v1/agents/alice/login", json={"device_uri": "sip:1001@pbx"})
    api.ok("POST", "/v1/agents/alice/pause", json={"reason": "lunch"})
    api.ok("POST", "/v1/agents/alice/unpause")
    api.ok("POST", "/v1/agents/alice/logout")
    api.ok("POST", "/v1/ivr-menus", 201, json={"key": "main", "name": "Main menu",
                                               "prompt": "welcome"})
    api.ok("PUT", "/v1/ivr-menus/main/options/1", json={"kind": "queue", "value": "sales"})
    api.ok("POST", "/v1/numbers", 201, json={
        "did": "+3225550100", "destination": {"kind": "ivr", "value": "main"}, "label": "Main"})
    api.ok("PATCH", "/v1/numbers/+3225550100", json={"label": "Sales"})
    api.ok("POST", "/v1/dialplans", 201, json={"key": "out", "name": "Out", "rules": [
        {"name": "emergency", "kind": "exact", "pattern": "112",
         "uri_template": "sip:112@sos.example.com"}]})


def _relayed(database_url: str, app: Application[Any]) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT position FROM relay_positions WHERE application = %s",
                           (app.name,)).fetchone()
    return row is not None and int(row[0]) >= (app.recorder.max_notification_id() or 0)


def _kcat(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed record of `topic`, as kcat reads it (-J: one JSON object a line)."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing: ./dev test installs the Debian package"
    done = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-J",
         "-X", "isolation.level=read_committed"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    records = []
    for line in done.stdout.splitlines():
        record = json.loads(line)
        headers = record.get("headers") or []
        record["headers"] = dict(zip(headers[::2], headers[1::2], strict=True))
        record["value"] = json.loads(record["payload"])
        records.append(record)
    return records


def _check_topic(kind: str, records: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(
        published_schema(kind), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    sequences: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        event = record["value"]
        assert [e.message for e in validator.iter_errors(event)] == [], event["type"]
        assert all(attribute in event for attribute in CLOUDEVENTS_ATTRIBUTES), event
        assert record["headers"][CONTENT_TYPE_HEADER] == CONTENT_TYPE
        assert record["key"] == event["subject"]  # key = aggregate id
        sequences[record["key"]].append(int(event["sequence"]))
        partitions[record["key"]].add(record["partition"])
    for key, seen in sequences.items():
        assert seen == sorted(set(seen)), f"{kind} {key}: sequence not rising: {seen}"
        assert len(partitions[key]) == 1, f"{kind} {key}: in several partitions"


def _stored_ids(sources: list[Application[Any]]) -> list[str]:
    return [str(event_id(UUID(str(n.originator_id)), n.originator_version))
            for app in sources
            for n in app.recorder.select_notifications(start=1, limit=100_000)]
