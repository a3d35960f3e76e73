"""What the live runner parks, the rebuilds and replays park too, and a stored event
this code cannot decode is parked rather than retried for ever.

Before: `dialtone rebuild` (both paths), `dialtone replay` and so `dialtone restore`
stopped on the first event the live runner had parked (an agent or caller named
with U+0000), so a store holding one could never have its projections rebuilt;
and a stored event of a class this release does not know (read after a rollback)
stopped the in-process runner, every group of that store with it."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.commands.rebuild import rebuild_projections
from dialtone.database import eventsourcing_env
from domain.call import Direction
from projections import callcentre, calls
from streams.inprocess import InProcessProjectionRunner

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _parked(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return [(row[0], row[1]) for row in conn.execute(
            "SELECT projection, type FROM projection_dead_letters ORDER BY projection")]


def _calls(service: CallService, *callers: str) -> None:
    for caller in callers:
        service.initiate_call(caller=caller, callee="+3225550199", trunk=None,
                              direction=Direction.INBOUND, sip_call_id=f"{caller!r}@test",
                              occurred_at=T0)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_rebuild_of_the_call_centre_parks_what_the_live_runner_parked(
        database_url: str, jobs: int) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        service.create_agent("alice", "Alice", occurred_at=T0)
        service.create_agent("mallory", "Mallory\x00Evil", occurred_at=T0)
        InProcessProjectionRunner(service, database_url, [callcentre.GROUP]).catch_up()
    parked = _parked(database_url)
    assert parked == [("callcentre_events", "dialtone.agent.created.v1")]

    rebuild_projections(database_url, ("agent_state",), jobs=jobs)

    assert _parked(database_url) == parked
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT key FROM agent_state").fetchall() == [("alice",)]


def test_a_rebuild_of_the_calls_tables_parks_what_the_live_runner_parked(
        database_url: str) -> None:
    with CallService(env=eventsourcing_env(database_url)) as service:
        _calls(service, "+3225550100", "Eve\x00")
        InProcessProjectionRunner(service, database_url, [calls.GROUP]).catch_up()
    parked = _parked(database_url)
    assert parked == [("call_events", "dialtone.call.initiated.v1")]

    rebuild_projections(database_url, ("cdr", "call_events"))

    assert _parked(database_url) == parked
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT caller FROM cdr").fetchall() == [("+3225550100",)]


def test_a_stored_event_this_code_cannot_decode_is_parked_and_the_rest_project(
        database_url: str) -> None:
    with CallService(env=eventsourcing_env(database_url)) as service:
        _calls(service, "+3225550100")
        with psycopg.connect(database_url) as conn:  # a newer release's event class
            conn.execute(
                "INSERT INTO callservice_events (originator_id, originator_version, topic, state)"
                " SELECT originator_id, 2, 'domain.call:Call.Parked', state"
                " FROM callservice_events")
        _calls(service, "+3225550111", "+3225550122")
        runner = InProcessProjectionRunner(service, database_url, [calls.GROUP])
        assert runner.catch_up() == 4
        assert runner.catch_up() == 0  # past it for good

    assert _parked(database_url) == [("call_events", "domain.call:Call.Parked")]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM cdr").fetchone() == (3,)


def _a_newer_releases_event(database_url: str, table: str) -> None:
    with psycopg.connect(database_url) as conn:  # the store's first event, a class we lack
        conn.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                     " SELECT originator_id, 1000, 'domain.newer:Thing.Happened', state"
                     f" FROM {table} ORDER BY notification_id LIMIT 1")


def test_the_calls_rebuild_parks_a_stored_event_this_code_cannot_decode(
        database_url: str) -> None:
    """The runner parks it (above); a rebuild read the same history and stopped on it."""
    with CallService(env=eventsourcing_env(database_url)) as service:
        _calls(service, "+3225550100")
        _a_newer_releases_event(database_url, "callservice_events")
        _calls(service, "+3225550111")

    rebuild_projections(database_url, ("cdr", "call_events"))

    assert _parked(database_url) == [("call_events", "domain.newer:Thing.Happened")]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM cdr").fetchone() == (2,)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_replayed_group_parks_a_stored_event_this_code_cannot_decode(
        database_url: str, jobs: int) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        service.create_agent("alice", "Alice", occurred_at=T0)
        _a_newer_releases_event(database_url, "callcentreservice_events")
        service.create_agent("bob", "Bob", occurred_at=T0)

    rebuild_projections(database_url, ("agent_state",), jobs=jobs)

    assert _parked(database_url) == [("callcentre_events", "domain.newer:Thing.Happened")]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT key FROM agent_state ORDER BY key").fetchall() == [
            ("alice",), ("bob",)]
