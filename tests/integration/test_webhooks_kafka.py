"""Webhooks in the distributed deployment: the relay publishes to the real broker,
`dialtone webhooks` (its kafka-python consumer group queues, its dispatcher sends)
runs as a process, and the example receiver (examples/webhook_receiver.py, run as
integrators would) verifies every signature and prints each event once."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.identity.model import Role
from dialtone.database import eventsourcing_env
from dialtone.services.ports import free_port
from projections import calls
from streams.inprocess import InProcessProjectionRunner
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.integration.api_support import running_api
from tests.integration.webhook_support import by_subject, ended_call, relay_all

pytestmark = pytest.mark.kafka
RECEIVER = Path(__file__).parents[2] / "examples" / "webhook_receiver.py"


@pytest.fixture
def example_receiver() -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    secret, port = new_secret(), free_port()
    process = subprocess.Popen([sys.executable, str(RECEIVER), "--port", str(port),
                                "--secret", secret], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _accepts(port, process), 30, "the example receiver to listen")
        yield f"http://127.0.0.1:{port}/dialtone", secret, process
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int, process: subprocess.Popen[str]) -> bool:
    """Whether the receiver takes a connection on `port`; a receiver that exited fails."""
    if process.poll() is not None:
        _, err = process.communicate(timeout=10)
        pytest.fail(f"the example receiver exited with {process.returncode}: {err}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _printed(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    process.terminate()
    out, _ = process.communicate(timeout=10)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_consumer_group_delivers_to_the_example_receiver(
        database_url: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
        example_receiver: tuple[str, str, subprocess.Popen[str]],
        dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    url, secret, receiver = example_receiver
    monkeypatch.setenv("DIALTONE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32")
    with running_api(database_url, role=Role.INTEGRATOR) as api:
        created = api.post("/v1/webhooks", json={"url": url, "event_types": ["*"],
                                                 "secret": secret})
        assert created.status_code == 201
    env = pipeline_env(database_url, kafka_bootstrap)
    with CallService(env=eventsourcing_env(database_url)) as service:
        call_ids = [ended_call(service, f"k{n}@test") for n in range(2)]
        InProcessProjectionRunner(service, database_url, [calls.GROUP]).catch_up()  # the CDRs
        relay_all(service, database_url, kafka_bootstrap, env["DIALTONE_TOPIC_PREFIX"])
    metrics_port = free_port()
    webhooks = dialtone_processes(["webhooks"], {
        **env, "DIALTONE_WEBHOOK_ALLOW_NETS": "127.0.0.1/32",
        "DIALTONE_METRICS_PORT": str(metrics_port), "DIALTONE_METRICS_HOST": "127.0.0.1"})
    wait_for(lambda: _delivered(database_url) == 8, 120, "8 deliveries", processes=(webhooks,))
    # Its own metrics port, as `dialtone relay`'s: what it queued and delivered.
    delivered = ("dialtone_webhook_attempts_total", "delivered")
    wait_for(lambda: _scraped(metrics_port).get(delivered) == 8, 30,
             "8 delivered attempts on the metrics port", processes=(webhooks,))
    assert _scraped(metrics_port)[("dialtone_webhook_deliveries_queued_total", "")] == 8
    webhooks.stop()
    assert webhooks.proc is not None
    assert webhooks.proc.returncode == 0, webhooks.tail()  # SIGTERM: a clean stop
    beats = _heartbeats(database_url)  # both loops of the process beat, then stopped cleanly
    assert {service for service, _, _ in beats} == {"webhook-dispatcher", "webhooks"}, beats
    assert all(stopped for _, _, stopped in beats), beats
    assert any(instance.startswith("kafka@") for _, instance, _ in beats), beats

    forged = httpx2.post(url, content=b'{"id":"x"}', headers={
        "webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"})
    assert forged.status_code == 401
    events = _printed(receiver)
    assert sorted({e["subject"] for e in events}) == sorted(str(c) for c in call_ids)
    assert len(events) == len({e["id"] for e in events}) == 8
    assert all(v == [1, 2, 3, 4] for v in by_subject(events).values())
    ended = [e for e in events if e["type"] == "dialtone.call.ended.v1"]
    assert {e["data"]["cdr"]["disposition"] for e in ended} == {"answered"}


def _scraped(port: int) -> dict[tuple[str, str], float]:
    """The webhook samples `dialtone webhooks` serves on its metrics port."""
    response = httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {(s.name, s.labels.get("outcome", "")): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples if s.name.startswith("dialtone_webhook_")}


def _heartbeats(database_url: str) -> list[tuple[str, str, bool]]:
    with psycopg.connect(database_url) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(
            "SELECT service, instance, stopped_at IS NOT NULL FROM service_heartbeats"
            " WHERE service LIKE 'webhook%'").fetchall()]


def _delivered(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"
                           ).fetchone()
    return int(row[0]) if row else 0
