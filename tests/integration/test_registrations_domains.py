"""A device stays its tenant's when that tenant moves to another SIP domain, and no
other tenant can take the old domain over while devices are provisioned in it.

Before the fix a binding's tenant was whoever held its domain now: after acme moved
to voice.acme.test its desk phones (still registering at sip.acme.test with their
credentials) went unrecorded, and once globex set sip.acme.test they were recorded
as globex's, so globex's agents could log in on acme's phones."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import psycopg
import pytest
import redis

from adapters.registrar.bindings import BindingsObserver
from application.identity import sip_credentials
from application.identity.model import Conflict
from application.registrations import RegistrationService
from dialtone.commands.users import with_connection
from dialtone.database import eventsourcing_env
from tests.fixtures.redis import RedisDb, redis_db, redis_server  # noqa: F401
from tests.integration.test_registrations_metrics import bind

pytestmark = pytest.mark.migrated_database

OLD, NEW = "sip.acme.test", "voice.acme.test"
PHONE = f"sip:desk-101@{OLD}"


def test_a_device_stays_its_tenants_after_a_domain_move(database_url: str,
                                                        redis_db: RedisDb) -> None:  # noqa: F811
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'),"
                     " ('globex', 'Globex')")

    async def provision_then_move(conn: asyncpg.Connection) -> None:
        await sip_credentials.set_sip_domain(conn, "acme", OLD)
        await sip_credentials.create_credential(conn, "acme", "desk-101", "a device's own secret")
        await sip_credentials.set_sip_domain(conn, "acme", NEW)

    with_connection(database_url, provision_then_move)
    with pytest.raises(Conflict):  # acme's desk-101 still registers there
        with_connection(database_url, lambda conn: sip_credentials.set_sip_domain(
            conn, "globex", OLD))

    bind(redis_db, "1", "desk-101", OLD, timedelta(minutes=5))
    client = redis.Redis.from_url(redis_db.url)
    try:
        with RegistrationService(env=eventsourcing_env(database_url)) as registrations:
            assert BindingsObserver(registrations, client, database_url).observe_once() > 0
            assert registrations.device(PHONE, "acme") is not None
            assert registrations.device(PHONE, "globex") is None
    finally:
        client.close()
