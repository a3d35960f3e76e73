"""/healthz against real processes: a crashed or stopped service, a stalled projection.

Heartbeats run at 0.3 s here (DIALTONE_HEARTBEAT_INTERVAL_S) so that a stale
row shows within about a second; every wait is bounded.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.health import EventStore, HealthConfig
from application.calls import CallService
from application.heartbeats import host_name
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone import bootstrap
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.topics import topic_for
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.sip import StartWorker
from tests.integration.api_support import PROBLEM, running_api

BEAT_S = "0.3"
# Stale after ten missed beats (3 s), not the default three (0.9 s): on a loaded
# CI machine a live process can miss a second of beats, and a test that reads
# "running" then asserts 200 must not see it flip. A SIGKILLed one still goes
# stale well inside every wait's bound.
TOLERANT = 10.0


@pytest.fixture
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Child processes (which copy os.environ) beat every 0.3 s."""
    monkeypatch.setenv("DIALTONE_HEARTBEAT_INTERVAL_S", BEAT_S)
    return {"DIALTONE_HEARTBEAT_INTERVAL_S": BEAT_S}


@pytest.fixture
def api(database_url: str) -> Iterator[Callable[[HealthConfig], TestClient]]:
    with running_api(database_url) as client:
        def configured(config: HealthConfig) -> TestClient:
            client.app.state.health = config  # type: ignore[attr-defined]
            return client
        yield configured


def _health(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    body = response.json()
    if response.status_code == 503:
        assert response.headers["content-type"] == PROBLEM
        return 503, body["health"]
    assert response.status_code == 200, response.text
    return 200, body


def _service(client: TestClient, service: str, instance: str) -> str | None:
    _, body = _health(client)
    return next((s["status"] for s in body["services"]
                 if s["service"] == service and s["instance"] == instance), None)


def test_a_sigkilled_b2bua_worker_shows_stale_and_a_stopped_one_stopped(
    fast_beats: dict[str, str], api: Callable[[HealthConfig], TestClient], b2bua: StartWorker,
) -> None:
    client = api(HealthConfig(stale_after_beats=TOLERANT))
    killed, stopped = b2bua(args=["--no-callcentre"]), b2bua(args=["--no-callcentre"])

    def running(port: int) -> bool:
        return _service(client, "b2bua", f"127.0.0.1:{port}") == "running"

    for worker in (killed, stopped):
        wait_for(functools.partial(running, worker.port), 20, f"b2bua {worker.port} beating")
    assert _health(client)[0] == 200

    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(10)
    wait_for(lambda: _service(client, "b2bua", f"127.0.0.1:{killed.port}") == "stale", 20,
             "the killed worker to go stale")
    status, body = _health(client)
    assert status == 503
    assert any(f"b2bua 127.0.0.1:{killed.port} is stale" in p for p in body["problems"])

    assert stopped.stop() == 0
    assert _service(client, "b2bua", f"127.0.0.1:{stopped.port}") == "stopped"


@pytest.mark.kafka
def test_a_killed_relay_goes_stale_a_restarted_one_recovers_and_a_stopped_one_is_missing(
    fast_beats: dict[str, str], api: Callable[[HealthConfig], TestClient], database_url: str,
    kafka_bootstrap: str, dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    client = api(HealthConfig(required_services=("relay",), stale_after_beats=TOLERANT))
    env = {**pipeline_env(database_url, kafka_bootstrap), **fast_beats}
    name = CallService.name
    assert _health(client)[0] == 503  # no relay yet

    relay = dialtone_processes(["relay"], env)
    wait_for(lambda: _service(client, "relay", name) == "running", 60, "the relay beating",
             processes=(relay,))
    assert _health(client)[0] == 200
    relay.kill()
    wait_for(lambda: _service(client, "relay", name) == "stale", 20, "the killed relay stale",
             processes=(relay,))
    status, body = _health(client)
    assert status == 503
    assert any(f"service relay {name} is stale" in p for p in body["problems"])

    relay = dialtone_processes(["relay"], env)  # takes the same row over
    wait_for(lambda: _health(client)[0] == 200, 60, "health back with a new relay",
             processes=(relay,))
    relay.stop()
    assert _service(client, "relay", name) == "stopped"
    status, body = _health(client)
    assert status == 503
    assert body["missing_services"] == ["relay"]


def test_a_projection_that_stops_advancing_while_events_arrive_is_stalled(
    api: Callable[[HealthConfig], TestClient], database_url: str,
) -> None:
    config = HealthConfig(event_stores=(EventStore(CallService.name, (topic_for("call"),)),),
                          stall_after_s=1.0)
    client = api(config)
    service = CallService(env=eventsourcing_env(database_url))
    [runner, *others] = bootstrap.inprocess_runners(database_url)
    assert runner.app.name == CallService.name
    for other in others:
        other.app.close()
    runner.start()
    try:
        lifecycles(service, 2, "before")
        wait_for(lambda: _lag(client, "cdr")["events_behind"] == 0, 30, "cdr caught up")
    finally:
        runner.stop()
    assert _health(client)[0] == 200

    lifecycles(service, 3, "while stopped")  # the store grows; the projection does not
    behind = 3 * EVENTS_PER_LIFECYCLE
    lag = _lag(client, "cdr")
    assert lag["events_behind"] == behind
    assert lag["sources"][0]["source"] == f"store:{CallService.name}"
    assert lag["sources"][0]["events_behind"] == behind
    assert lag["store_head"] == lag["position"] + behind

    def stalled() -> bool:
        status, body = _health(client)
        return status == 503 and any("projection cdr is stalled" in p for p in body["problems"])

    wait_for(stalled, 20, "cdr reported stalled")
    assert _lag(client, "cdr")["stalled"] is True

    runner = bootstrap.inprocess_runners(database_url)[0]
    runner.start()
    try:
        wait_for(lambda: _health(client)[0] == 200, 30, "health back once the runner caught up")
    finally:
        runner.stop()
    assert _lag(client, "cdr")["events_behind"] == 0


def _lag(client: TestClient, projection: str) -> dict[str, Any]:
    response = client.get("/v1/projections")
    assert response.status_code == 200, response.text
    rows = [p for p in response.json()["data"]
            if p["projection"] == projection and p["application"] == CallService.name]
    return rows[0] if rows else {"events_behind": None}




@pytest.mark.kafka
def test_a_faust_worker_beats_and_marks_itself_stopped_on_sigterm(
    fast_beats: dict[str, str], api: Callable[[HealthConfig], TestClient], database_url: str,
    kafka_bootstrap: str, dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    client = api(HealthConfig(required_services=("worker",), stale_after_beats=TOLERANT))
    worker = dialtone_processes(["worker"], {**pipeline_env(database_url, kafka_bootstrap),
                                             **fast_beats})

    def worker_status() -> str | None:
        _, body = _health(client)
        return next((s["status"] for s in body["services"] if s["service"] == "worker"), None)

    wait_for(lambda: worker_status() == "running", 90, "the worker beating", processes=(worker,))
    assert _health(client)[0] == 200
    worker.stop()
    assert worker_status() == "stopped"
    assert _health(client)[1]["missing_services"] == ["worker"]


def test_the_platform_as_up_composes_it_is_healthy_and_a_stopped_runner_is_missing(
    fast_beats: dict[str, str], database_url: str,
) -> None:
    apply_migrations(database_url)
    runners = [*bootstrap.inprocess_runners(database_url), bootstrap.routing_runner(database_url)]
    for runner in runners:
        runner.start()
    try:
        app = bootstrap.http_app(database_url, Settings(kafka_bootstrap=None))
        with TestClient(app) as client:
            wait_for(lambda: _health(client)[0] == 200, 20, "the first beats")
            status, body = _health(client)
            assert sorted((s["service"], s["instance"]) for s in body["services"]) == [
                ("projections", "projections-CallCentreService"),
                ("projections", "projections-CallService"),
                ("refresher", "refresher-CallCentreService"),  # the interval buckets'
                ("routing", host_name())]
            for runner in runners[:2]:
                runner.stop()
            status, body = _health(client)
            assert status == 503
            assert body["missing_services"] == ["projections"]
    finally:
        for runner in runners:
            runner.stop()
