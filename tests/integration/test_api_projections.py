"""GET /v1/projections and the projection part of /healthz, over a real runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from api.health import EventStore, application_of
from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import eventsourcing_env
from domain.call import Direction
from projections import call_events, callcentre, calls
from projections.envelope import decode
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


def test_calls_waiting_for_an_earlier_event_are_listed_and_degrade_health_once_old(
        database_url):
    """A call whose first event never came (parked, or lost on the way): its later events
    wait in call_events and its CDR stops there. Before, nothing showed it."""
    with CallService(env=eventsourcing_env(database_url)) as service:
        call_id = service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                        trunk=None, sip_call_id="gap@test", occurred_at=T0)
        service.route_call(call_id, "queue:sales", T0 + timedelta(seconds=1))
        history = decode(service, service.recorder.select_notifications(1, 100))
    with psycopg.connect(database_url, autocommit=True) as conn:
        calls.apply_batch(conn, [e for e in history if e.version > 1],
                          f"store:{CallService.name}")
    with running_api(database_url) as client:
        young = client.get("/healthz").json()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE call_projection_gaps SET since = now() - interval '120 s'")
        lag = {p["projection"]: p for p in client.get("/v1/projections").json()["data"]}
        old = client.get("/healthz").json()
        metrics = client.get("/metrics").text

    assert (young["status"], young["problems"]) == ("ok", [])  # not yet worth a look
    waiting = lag[call_events.NAME]
    assert waiting["waiting_calls"] == 1
    assert 120 <= waiting["oldest_waiting_s"] < 180
    assert lag[calls.CDR]["waiting_calls"] is None
    assert old["status"] == "degraded"
    [problem] = old["problems"]
    assert problem.startswith("1 calls wait in call_events for an earlier event, the oldest "
                              "for 12")
    assert (f'dialtone_projection_waiting_calls{{application="{CallService.name}",'
            f'projection="call_events"}} 1.0') in metrics
