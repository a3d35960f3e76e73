"""What tests/e2e/test_sip_registrar.py builds on, kept apart so that its tests
stay in one module (one Kamailio, one database and one Redis for all of them):
the tenant, its SIP users and their provisioning as HA1, Kamailio's database
URL, the running registrar, softphones registering through it, a call-centre
worker behind it, and readers of what they leave (contacts in Redis, a
device's events, a call's events).

The helpers keep the names they had in the test module, underscores included:
the tests call them by those names."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from psycopg.conninfo import conninfo_to_dict

from application.identity import sip_credentials
from application.identity.store import ensure_tenant
from application.registrations import RegistrationService
from devtools.kamailio import Kamailio
from devtools.phones import Softphone
from dialtone.commands.b2bua import spawn_worker
from dialtone.database import eventsourcing_env
from domain.call import Call
from domain.device import DeviceRegistration
from tests.fixtures.redis import RedisDb
from tests.fixtures.sip import CallStore, Worker, free_udp_port, wait_until

TENANT, DOMAIN = "acme", "acme.test"
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-333",
             "dave": "dave-secret-4444", "erin": "erin-secret-55555",
             "frank": "frank-secret-666666", "grace": "grace-secret-7777777",
             "henry": "henry-secret-88888888", "ivan": "ivan-secret-999999999",
             "judy": "judy-secret-1010101010"}
NONCE_EXPIRE_S = 2  # short, so a test can outlive a nonce


def kamailio_db_url(dsn: str) -> str:
    """The project database's DSN as db_postgres's URL: postgres://user[:pw]@host:port/db."""
    p = conninfo_to_dict(dsn)
    password = f":{p['password']}" if p.get("password") else ""
    return (f"postgres://{p.get('user') or 'postgres'}{password}@{p.get('host') or '127.0.0.1'}"
            f":{p.get('port') or 5432}/{p['dbname']}")


async def provision(dsn: str, users: dict[str, str], tenant: str = TENANT,
                    domain: str = DOMAIN) -> None:
    """The tenant, its SIP domain and its devices' credentials (HA1 only)."""
    conn = await asyncpg.connect(kamailio_db_url(dsn))
    try:
        await ensure_tenant(conn, tenant)
        await sip_credentials.set_sip_domain(conn, tenant, domain)
        for user, password in users.items():
            await sip_credentials.create_credential(conn, tenant, user, password)
    finally:
        await conn.close()


@dataclass
class Registrar:
    kamailio: Kamailio
    dsn: str
    work: Path
    worker_port: int  # the one worker of Kamailio's dispatcher list (none listens there)

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.kamailio.port}"


def start_phone(start: Callable[..., Softphone], registrar: Registrar, user: str,
                password: str, *extra: str) -> Softphone:
    """A softphone registering as user@DOMAIN (the password through the environment)."""
    env = {**os.environ, "DIALTONE_SIP_PASSWORD": password}
    return start(user, free_udp_port(), registrar.work / "phones",
                 args=["--registrar", registrar.uri, "--domain", DOMAIN, *extra], env=env)


def contacts(redis: RedisDb, user: str) -> list[dict[str, str]]:
    """The contacts usrloc keeps for user@DOMAIN in Redis (db_redis's usrdom set)."""
    entries = redis.server.cli(redis.db, "SMEMBERS", f"location:usrdom::{user}:{DOMAIN}")
    return [redis.hash(key) for key in entries.splitlines() if key]


def device_events(dsn: str, aor: str) -> list[str]:
    """The names of the events recorded for ``aor``'s device, in order."""
    device_id = DeviceRegistration.id_for(aor, TENANT)
    with RegistrationService(env=eventsourcing_env(dsn, CREATE_TABLE="n")) as reader:
        return [n.topic.rsplit(".", 1)[-1]
                for n in reader.recorder.select_notifications(1, 1000)
                if n.originator_id == device_id]


def is_registered(dsn: str, aor: str) -> bool:
    with RegistrationService(env=eventsourcing_env(dsn, CREATE_TABLE="n")) as reader:
        device = reader.device(aor, TENANT)
        return device is not None and bool(device.live(datetime.now(UTC)))


def aor_of_extension(dsn: str, extension: str) -> str | None:
    """What login by extension resolves (POST /v1/agents/{key}/login {"extension"})."""
    async def read() -> str | None:
        conn = await asyncpg.connect(kamailio_db_url(dsn))
        try:
            return await sip_credentials.device_aor(conn, TENANT, extension)
        finally:
            await conn.close()
    return asyncio.run(read())


def edge_worker(registrar: Registrar, tmp_path: Path) -> Worker:
    """A real call-centre worker on the dispatcher list's port, sending offers to
    registering devices through the registrar's Kamailio (--edge)."""
    log = tmp_path / "b2bua.log"
    env = {**os.environ, "DATABASE_URL": registrar.dsn, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(tmp_path / "data")}
    worker = Worker(registrar.worker_port, spawn_worker(
        registrar.worker_port, extra_args=["--edge", f"127.0.0.1:{registrar.kamailio.port}"],
        env=env, log_file=log), log)
    wait_until(lambda: "listening on udp" in worker.log_text() or not worker.alive(),
               "the worker listening")
    assert worker.alive(), worker.log_text()
    return worker


def event_names(store: CallStore, sip_call_id: str) -> list[str]:
    return [type(e).__name__ for e in store.histories().get(Call.id_for(sip_call_id), [])]
