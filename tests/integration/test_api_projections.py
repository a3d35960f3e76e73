"""GET /v1/projections and the projection part of /healthz, over a real runner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.health import EventStore, application_of
from application.callcentre import CallCentreService
from dialtone.database import eventsourcing_env
from projections import callcentre, calls
from streams.inprocess import InProcessProjectionRunner
from tests.integration.api_support import running_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_lag_per_projection_and_a_parked_event_makes_health_degraded(database_url):
    with running_api(database_url) as client:
        service = CallCentreService(env=eventsourcing_env(database_url))
        service.create_agent("alice", "Alice", occurred_at=T0)
        service.create_agent("mallory", "Mallory\x00Evil", occurred_at=T0)  # poison: parked
        runner = InProcessProjectionRunner(service, database_url, [calls.GROUP, callcentre.GROUP])
        applied = runner.catch_up()
        assert applied == 2

        response = client.get("/v1/projections")
        assert response.status_code == 200, response.text
        lag = {p["projection"]: p for p in response.json()["data"]}
        head = lag[callcentre.GROUP.names[0]]
        assert head["application"] == CallCentreService.name
        assert head["store_head"] == head["position"] == applied
        assert head["events_behind"] == 0
        assert head["stalled"] is False
        assert head["parked"] == 1
        assert head["sources"][0]["source"] == f"store:{CallCentreService.name}"
        assert lag[calls.NAMES[0]]["parked"] == 0

        health = client.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["problems"] == ["1 events parked by projections (GET /v1/projections)"]

        metrics = client.get("/metrics").text
        assert (f'dialtone_projection_parked_events{{application="{CallCentreService.name}",'
                f'projection="{callcentre.GROUP.names[0]}"}} 1.0') in metrics


def test_kafka_sources_belong_to_the_application_that_publishes_the_topic():
    stores = (EventStore("CallService", ("dialtone.calls.v1",)),
              EventStore("CallCentreService", ("dialtone.agents.v1", "dialtone.queues.v1")))
    assert application_of("store:CallService", stores) == "CallService"
    assert application_of("t1.dialtone.calls.v1:3", stores) == "CallService"
    assert application_of("kafka:t1.dialtone.agents.v1:0,t1.dialtone.agents.v1:2",
                          stores) == "CallCentreService"
    assert application_of("elsewhere.v1:0", stores) is None
