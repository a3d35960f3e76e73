"""The worker's follower reads the tenants' SIP domains (a table, not events) so that
offers to registering devices go through the edge (issue 14 §1); real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from adapters.sip.routing import follower as follower_module
from adapters.sip.routing.directory import Directory
from adapters.sip.routing.follower import CentreFollower
from application.callcentre import CallCentreService
from dialtone.database import eventsourcing_env
from domain.agent import Agent
from tests.integration.test_sip_follower_stop import NoCalls

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

ROUTE = "?Route=%3Csip:127.0.0.1:5060%3Blr%3E"


def _give_domain(dsn: str, tenant: str, domain: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name, sip_domain) VALUES (%s, %s, %s)"
                     " ON CONFLICT (id) DO UPDATE SET sip_domain = excluded.sip_domain",
                     (tenant, tenant, domain))


def test_offers_to_a_tenants_devices_go_through_the_edge_once_its_domain_is_read(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _give_domain(database_url, "acme", "acme.test")
    now = datetime.now(UTC)
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        for tenant, key in (("acme", "erin"), ("beta", "bob")):
            scoped = service.scoped(tenant)
            scoped.create_agent(key, key.title(), occurred_at=now)
            scoped.login(Agent.id_for(key, tenant), f"sip:{key}@{tenant}.test", now)
        erin, bob = Agent.id_for("erin", "acme"), Agent.id_for("bob", "beta")

        worker = CentreFollower(service, database_url, Directory("127.0.0.1:5060"), NoCalls())
        worker.load()
        assert worker.directory.device_uri(erin) == f"sip:erin@acme.test{ROUTE}"
        assert worker.directory.device_uri(bob) == "sip:bob@beta.test"  # no tenant's domain

        _give_domain(database_url, "beta", "beta.test")  # later: read within 10 s
        monkeypatch.setattr(follower_module, "DOMAINS_EVERY_S", 0.0)
        worker._step()
        assert worker.directory.device_uri(bob) == f"sip:bob@beta.test{ROUTE}"

        without_edge = CentreFollower(service, database_url, Directory(), NoCalls())
        without_edge.load()
        assert without_edge.directory.sip_domains == frozenset()  # never read
        assert without_edge.directory.device_uri(erin) == "sip:erin@acme.test"
