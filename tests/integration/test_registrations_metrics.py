"""The registrations observer's metrics (docs/observability.md, "Registrations") on a
real redis-server and the migrated event store: what one observation found (live,
expired, unknown-domain and unreadable bindings, devices, agents paused for their
device), the events it recorded by type, and its failures by kind with the loop
surviving them. A binding whose expiry does not parse is skipped: before, its
ValueError ended the observer's thread, and `dialtone registrations` exited. A
binding whose username makes no valid address of record is skipped too: before,
the domain refused it and every binding of each observation went unrecorded."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY

from adapters.registrar.bindings import BindingsObserver
from application.callcentre import CallCentreService
from application.registrations import RegistrationService
from dialtone.database import eventsourcing_env
from dialtone.services.ports import free_port
from domain.agent import Agent
from projections import callcentre
from streams.inprocess import InProcessProjectionRunner
from tests.fixtures.processes import wait_for
from tests.fixtures.redis import RedisDb, redis_db, redis_server  # noqa: F401

pytestmark = pytest.mark.migrated_database

TENANT, DOMAIN = "acme", "acme.test"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def bind(db: RedisDb, ruid: str, user: str, domain: str, expires_in: timedelta) -> None:
    """A binding as Kamailio's usrloc writes it through db_redis (local time)."""
    expires = (datetime.now() + expires_in).strftime("%Y-%m-%d %H:%M:%S")
    db.server.cli(db.db, "HSET", f"location:entry::{ruid}", "username", user,
                  "domain", domain, "contact", f"sip:{user}@10.0.0.{ruid}:5060",
                  "user_agent", "softphone", "expires", expires)


def test_an_observation_reports_what_the_registrar_holds_and_what_it_recorded(
        database_url: str, redis_db: RedisDb) -> None:  # noqa: F811
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name, sip_domain) VALUES (%s, %s, %s)",
                     (TENANT, TENANT, DOMAIN))
    bind(redis_db, "1", "alice", DOMAIN, timedelta(minutes=5))
    bind(redis_db, "2", "alice", DOMAIN.upper(), timedelta(minutes=10))  # same device
    bind(redis_db, "3", "bob", DOMAIN, timedelta(minutes=-1))  # expired, not yet removed
    bind(redis_db, "4", "carol", "nobody.test", timedelta(minutes=5))  # no tenant's domain
    bind(redis_db, "5", "dave", DOMAIN, timedelta(minutes=5))
    redis_db.server.cli(redis_db.db, "HSET", "location:entry::5", "expires", "next Tuesday")
    bind(redis_db, "6", "frank jones", DOMAIN, timedelta(minutes=5))  # no valid AOR
    env = eventsourcing_env(database_url)
    registrations, centre = RegistrationService(env=env), CallCentreService(env=env)
    runner = InProcessProjectionRunner(centre, database_url, [callcentre.GROUP])
    client = redis.Redis.from_url(redis_db.url)
    try:
        now = datetime.now().astimezone()
        acme = centre.scoped(TENANT)
        acme.create_agent("erin", "Erin", occurred_at=now)
        acme.login(Agent.id_for("erin", TENANT), f"sip:erin@{DOMAIN}", now)  # not registered
        runner.catch_up()
        observer = BindingsObserver(registrations, client, database_url, callcentre=centre)
        before = {e: value("dialtone_registrations_events_recorded_total", event=e)
                  for e in ("created", "registered")}
        observations = value("dialtone_registrations_observations_total")
        paused = value("dialtone_registrations_agent_changes_total", change="paused")

        recorded = observer.observe_once()

        assert recorded == 3  # alice: Created + 2 Registered; bob's expired binding: nothing
        assert value("dialtone_registrations_observations_total") == observations + 1
        assert value("dialtone_registrations_events_recorded_total",
                     event="created") == before["created"] + 1
        assert value("dialtone_registrations_events_recorded_total",
                     event="registered") == before["registered"] + 2
        assert value("dialtone_registrations_bindings", state="live") == 2
        assert value("dialtone_registrations_bindings", state="expired") == 1
        assert value("dialtone_registrations_bindings", state="unknown_domain") == 1
        assert value("dialtone_registrations_bindings", state="unreadable") == 1  # dave's
        assert value("dialtone_registrations_bindings", state="invalid_aor") == 1  # frank's
        assert value("dialtone_registrations_devices") == 1
        assert value("dialtone_registrations_agent_changes_total", change="paused") == paused + 1
        assert value("dialtone_registrations_agents_paused") == 1
        assert value("dialtone_registrations_observation_duration_seconds_count") >= 1
        assert value("dialtone_registrations_last_success_timestamp_seconds") >= now.timestamp()

        runner.catch_up()  # erin shows paused now: still counted, not paused again
        assert observer.observe_once() == 0
        assert value("dialtone_registrations_agents_paused") == 1
        assert value("dialtone_registrations_agent_changes_total", change="paused") == paused + 1
    finally:
        client.close()
        centre.close()
        registrations.close()


def test_a_failing_observation_is_counted_by_kind_and_the_loop_goes_on(
        database_url: str) -> None:
    """Redis unreachable (nobody on the port): each tick fails, is counted as `redis`,
    and the observer keeps trying until it is stopped."""
    registrations = RegistrationService(env=eventsourcing_env(database_url))
    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=2)
    observer = BindingsObserver(registrations, client, database_url, interval_s=0.2)
    errors = value("dialtone_registrations_observation_errors_total", kind="redis")
    # The registry is the process's: other tests in it may have counted failures.
    others = value("dialtone_registrations_observation_errors_total", kind="other")
    last = value("dialtone_registrations_last_success_timestamp_seconds")
    thread = threading.Thread(target=observer.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: value("dialtone_registrations_observation_errors_total",
                               kind="redis") >= errors + 2, 20, "two failed observations")
        assert thread.is_alive()
        assert value("dialtone_registrations_last_success_timestamp_seconds") == last
        assert value("dialtone_registrations_observation_errors_total",
                     kind="other") == others  # none of them counted as a bug
    finally:
        observer.stop()
        thread.join(10)
        client.close()
        registrations.close()
    assert not thread.is_alive()
