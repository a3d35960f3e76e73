"""Kamailio's registrar (infra/kamailio/registrar.cfg, issue 14 §1) with real servers:
credentials provisioned in PostgreSQL as HA1 only (migration 0020), registrations in
a real redis-server, real pjsua2 softphones and sipp registering.

One Kamailio, one database and one Redis database serve the whole module; every
test registers a device of its own. The helpers are in registrar_support.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from adapters.registrar.bindings import BindingsObserver
from application.callcentre import CallCentreService
from application.device_presence import REASON
from application.registrations import RegistrationService
from devtools.kamailio import start_kamailio
from devtools.phones import phones
from dialtone.bootstrap import routing_runner
from dialtone.commands.registrations import EmbeddedRegistrations
from dialtone.database import drop_database, ensure_database, eventsourcing_env, with_database
from dialtone.migrations import apply_migrations
from domain.addressing import Target
from domain.agent import Agent
from domain.call import Call
from projections import callcentre
from streams.inprocess import InProcessProjectionRunner
from tests.e2e.registrar_support import (
    DOMAIN,
    NONCE_EXPIRE_S,
    PASSWORDS,
    TENANT,
    Registrar,
    aor_of_extension,
    contacts,
    device_events,
    edge_worker,
    event_names,
    is_registered,
    kamailio_db_url,
    provision,
    start_phone,
)
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.redis import RedisDb, RedisServer, fresh_db, redis_server  # noqa: F401
from tests.fixtures.sip import CallStore, Sipp, free_udp_port, wait_until

pytestmark = pytest.mark.sip


@pytest.fixture(scope="module")
def registrar_db(pg_admin_dsn: str) -> Iterator[str]:
    dsn = with_database(pg_admin_dsn, f"reg_{os.getpid()}_{id(object()) % 10**8}")
    ensure_database(dsn)
    apply_migrations(dsn)
    asyncio.run(provision(dsn, PASSWORDS))
    # The registrations store's tables made once here: a test's reader and an
    # observer process each running eventsourcing's DDL at the same moment collide
    # in PostgreSQL's catalog ("tuple concurrently updated"), which `dialtone up`
    # avoids the same way (EVENT_TABLES_READY); registrar_support's readers run no DDL.
    RegistrationService(env=eventsourcing_env(dsn)).close()
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="module")
def registrar_redis(redis_server: RedisServer) -> RedisDb:  # noqa: F811 - the fixture
    return fresh_db(redis_server)


@pytest.fixture(scope="module")
def registrar(registrar_db: str, registrar_redis: RedisDb,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registrar]:
    work = tmp_path_factory.mktemp("registrar")
    worker_port = free_udp_port()
    proxy = start_kamailio(work / "kamailio", [worker_port], port=free_udp_port(),
                           defines=["WITH_REGISTRAR", f"NONCE_EXPIRE_S={NONCE_EXPIRE_S}"],
                           values={"SUBSCRIBER_DB_URL": kamailio_db_url(registrar_db),
                                   "REGISTRATION_REDIS_URL": registrar_redis.url})
    yield Registrar(proxy, registrar_db, work, worker_port)
    proxy.stop(timeout=10)  # its children too: none left holding the port


def test_the_right_password_registers_and_the_contact_is_in_redis(
        registrar: Registrar, registrar_redis: RedisDb) -> None:
    with phones() as start:
        phone = start_phone(start, registrar, "alice", PASSWORDS["alice"])
        assert phone.wait("registration", 30)["status"] == 200

        wait_until(lambda: bool(contacts(registrar_redis, "alice")), "alice's contact in Redis")
        [contact] = contacts(registrar_redis, "alice")
        assert f"sip:alice@127.0.0.1:{phone.port}" in contact["contact"], contact
        assert contact["user_agent"] == "dialtone-softphone/alice", contact

        phone.send("unregister")  # the phone says goodbye: the contact goes
        assert phone.wait("registration", 30)["status"] == 200
        wait_until(lambda: not contacts(registrar_redis, "alice"), "alice's contact removed")


def test_a_wrong_password_is_refused_and_nothing_is_stored(
        registrar: Registrar, registrar_redis: RedisDb) -> None:
    with phones() as start:
        phone = start_phone(start, registrar, "bob", "not-bobs-password")
        assert phone.wait("registration", 30)["status"] == 403

    assert contacts(registrar_redis, "bob") == []
    log = registrar.kamailio.log_text()
    assert "not-bobs-password" not in log
    assert "bob-secret-22" not in log


def test_a_made_up_nonce_is_not_accepted_and_gets_a_fresh_challenge(
        registrar: Registrar, registrar_redis: RedisDb, sipp: Sipp) -> None:
    result = sipp.uac("uac_register_stale_nonce.xml", registrar.kamailio.port,
                      service="carol", keys={"domain": DOMAIN})

    assert result.ok, result.errors + result.output
    assert contacts(registrar_redis, "carol") == []


def test_an_expired_nonce_gets_a_fresh_challenge_marked_stale_then_the_password_works(
        registrar: Registrar, registrar_redis: RedisDb, sipp: Sipp) -> None:
    scenario = sipp.render("uac_register_expired_nonce.xml", sip_user="henry",
                           sip_password=PASSWORDS["henry"])
    wait_ms = (NONCE_EXPIRE_S + 2) * 1000  # past the nonce's lifetime (and the auth drift)

    result = sipp.uac(scenario, registrar.kamailio.port, service="henry",
                      keys={"domain": DOMAIN}, extra=["-d", str(wait_ms)])

    assert result.ok, result.errors + result.output
    assert len(contacts(registrar_redis, "henry")) == 1


def test_registrations_become_domain_events_with_contact_and_user_agent(
        registrar: Registrar, registrar_redis: RedisDb) -> None:
    service = RegistrationService(env=eventsourcing_env(registrar.dsn))
    client = redis.Redis.from_url(registrar_redis.url)
    later = timedelta()  # how far the observer's clock is ahead of the wall clock
    observer = BindingsObserver(service, client, registrar.dsn,
                                clock=lambda: datetime.now(UTC) + later)
    aor = f"sip:dave@{DOMAIN}"
    try:
        observer.observe_once()  # what other tests left registered, recorded first
        with phones() as start:
            phone = start_phone(start, registrar, "dave", PASSWORDS["dave"], "--reg-expires", "30")
            assert phone.wait("registration", 30)["status"] == 200
            assert observer.observe_once() == 2  # the record made, dave registered
            device = service.device(aor, TENANT)
            assert device is not None
            [binding] = device.live(datetime.now(UTC))
            assert f"sip:dave@127.0.0.1:{phone.port}" in binding.contact
            assert binding.user_agent == "dialtone-softphone/dave"
            assert observer.observe_once() == 0  # nothing changed, nothing recorded

            phone.send("unregister")
            assert phone.wait("registration", 30)["status"] == 200
            assert observer.observe_once() == 1

            phone.send("register")
            assert phone.wait("registration", 30)["status"] == 200
            phone.process.kill()  # gone without a word: the binding stays until it expires
            phone.process.wait(10)
        assert observer.observe_once() == 1
        later = timedelta(seconds=31)  # past the 30 s granted, still in Redis
        assert observer.observe_once() == 1
    finally:
        client.close()
        service.close()

    events = device_events(registrar.dsn, aor)
    assert events == ["Created", "Registered", "Unregistered", "Registered", "Expired"]


def test_an_agent_whose_device_is_not_registered_is_paused_and_resumed_when_it_registers(
        registrar: Registrar, registrar_redis: RedisDb) -> None:
    env = eventsourcing_env(registrar.dsn)
    registrations = RegistrationService(env=env)
    centre = CallCentreService(env=env)
    runner = InProcessProjectionRunner(centre, registrar.dsn, [callcentre.GROUP])
    client = redis.Redis.from_url(registrar_redis.url)
    later = timedelta()
    observer = BindingsObserver(registrations, client, registrar.dsn, callcentre=centre,
                                clock=lambda: datetime.now(UTC) + later)

    def observed_agent() -> tuple[str, str | None]:
        """Observe (recording, then reconciling the agent), and the agent's state after."""
        runner.catch_up()
        observer.observe_once()
        agent: Agent = centre.repository.get(Agent.id_for("erin", TENANT))
        runner.catch_up()
        return str(agent.state), agent.pause_reason

    try:
        now = datetime.now(UTC)
        acme = centre.scoped(TENANT)
        acme.create_agent("erin", "Erin", occurred_at=now)
        acme.login(Agent.id_for("erin", TENANT), f"sip:erin@{DOMAIN}", now)

        assert observed_agent() == ("paused", REASON)  # logged in, device not registered

        with phones() as start:
            phone = start_phone(start, registrar, "erin", PASSWORDS["erin"], "--reg-expires", "30")
            assert phone.wait("registration", 30)["status"] == 200
            assert observed_agent() == ("available", None)
            phone.process.kill()  # gone without unregistering
            phone.process.wait(10)
        assert observed_agent() == ("available", None)  # still registered for 30 s
        later = timedelta(seconds=31)
        assert observed_agent() == ("paused", REASON)  # expired: out of routing
    finally:
        client.close()
        centre.close()
        registrations.close()


def test_dialtone_registrations_records_a_phones_registration(
        registrar: Registrar, registrar_redis: RedisDb,
        dialtone_processes: Callable[..., DialtoneProcess]) -> None:
    process = dialtone_processes(["registrations", "--interval", "0.5"], {
        "DIALTONE_DATABASE_URL": registrar.dsn,
        "DIALTONE_REGISTRATION_REDIS_URL": registrar_redis.url})
    with phones() as start:
        phone = start_phone(start, registrar, "frank", PASSWORDS["frank"])
        assert phone.wait("registration", 30)["status"] == 200
        wait_for(lambda: is_registered(registrar.dsn, f"sip:frank@{DOMAIN}"), 40,
                 "frank's registration recorded by `dialtone registrations`",
                 processes=(process,))
    assert process.alive()


def test_the_observer_dialtone_up_embeds_records_a_phones_registration(
        registrar: Registrar, registrar_redis: RedisDb) -> None:
    embedded = EmbeddedRegistrations(registrar.dsn, registrar_redis.url, interval_s=0.5)
    embedded.start()
    try:
        with phones() as start:
            phone = start_phone(start, registrar, "judy", PASSWORDS["judy"])
            assert phone.wait("registration", 30)["status"] == 200
            wait_until(lambda: is_registered(registrar.dsn, f"sip:judy@{DOMAIN}"),
                       "judy's registration recorded by the embedded observer", timeout=40)
    finally:
        embedded.stop()
    assert not embedded._thread.is_alive()


def test_a_workers_offer_to_a_registered_device_reaches_the_phone_through_kamailio(
        registrar: Registrar, sipp: Sipp) -> None:
    with phones() as start:
        phone = start_phone(start, registrar, "grace", PASSWORDS["grace"], "--answer-after", "0.3")
        assert phone.wait("registration", 30)["status"] == 200

        # sipp plays the worker: it sends from the dispatcher list's worker port.
        result = sipp.uac("uac_invite_aor.xml", registrar.kamailio.port, service="grace",
                          keys={"domain": DOMAIN},
                          extra=["-p", str(registrar.worker_port), "-d", "300"])

        assert result.ok, result.errors + result.output
        incoming = phone.wait("incoming", 10)
        assert f"grace@{DOMAIN}" in incoming["local"], incoming
        phone.wait("state", 10, state="DISCONNECTED")


def test_a_queued_call_rings_and_is_answered_on_the_agents_registered_softphone(
        registrar: Registrar, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    env = eventsourcing_env(registrar.dsn)
    centre = CallCentreService(env=env)
    acme = centre.scoped(TENANT)
    queue = acme.create_queue("desk", "Desk", "longest_idle", occurred_at=now)
    acme.create_agent("ivan", "Ivan", occurred_at=now)
    acme.add_member(queue.id, Agent.id_for("ivan", TENANT), 0, now)
    acme.create_number("7100", Target.queue(queue.id), occurred_at=now)
    aor = aor_of_extension(registrar.dsn, "ivan")  # the agent logs in by extension
    assert aor == f"sip:ivan@{DOMAIN}"
    acme.login(Agent.id_for("ivan", TENANT), aor, now)
    router = routing_runner(registrar.dsn)
    router.start()
    worker = edge_worker(registrar, tmp_path)
    store = CallStore(registrar.dsn)
    try:
        with phones() as start:
            ivan = start_phone(start, registrar, "ivan", PASSWORDS["ivan"], "--answer-after", "0.3")
            assert ivan.wait("registration", 30)["status"] == 200
            caller = start("caller", free_udp_port(), tmp_path / "phones")

            caller.send(f"dial sip:7100@127.0.0.1:{worker.port}")
            sip_call_id = caller.wait("dialled")["sip_call_id"]
            caller.wait("state", 20, state="CONFIRMED")  # the queue answered the caller
            incoming = ivan.wait("incoming", 20)  # the offer, through Kamailio
            assert f"ivan@{DOMAIN}" in incoming["local"], incoming
            ivan.wait("state", 20, state="CONFIRMED")
            wait_until(lambda: "AgentConnected" in event_names(store, sip_call_id),
                       "ivan connected to the caller")  # the worker bridged them
            caller.send("hangup")
            ivan.wait("state", 20, state="DISCONNECTED")  # the BYE found the phone
        wait_until(lambda: "Ended" in event_names(store, sip_call_id), "the call's end")
        names = event_names(store, sip_call_id)
        assert names.index("AgentConnected") < names.index("Ended"), names
        call = store.service.get_call(Call.id_for(sip_call_id))
        assert (call.queue, call.agents, call.disposition) == ("desk", ["ivan"], "answered"), \
            (names, worker.log_text()[-3000:])
    finally:
        store.close()
        worker.stop()
        router.stop()
        centre.close()


def test_a_workers_invite_for_no_provisioned_device_is_dispatched_as_before(
        registrar: Registrar) -> None:
    """route TO_DEVICE takes a worker's INVITE only for a provisioned device; any
    other goes back to the dispatcher (here to the one worker: this socket)."""
    invite = (f"INVITE sip:nobody@{DOMAIN} SIP/2.0\r\n"
              f"Via: SIP/2.0/UDP 127.0.0.1:{registrar.worker_port};branch=z9hG4bK-h1-nobody\r\n"
              f"From: <sip:worker@127.0.0.1>;tag=h1\r\nTo: <sip:nobody@{DOMAIN}>\r\n"
              "Call-ID: h1-nobody@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
              f"Contact: <sip:worker@127.0.0.1:{registrar.worker_port}>\r\n"
              "Content-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", registrar.worker_port))  # the dispatcher list's worker
        sock.settimeout(0.5)
        sock.sendto(invite, ("127.0.0.1", registrar.kamailio.port))
        lines: list[bytes] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"INVITE" in line for line in lines):
            with contextlib.suppress(TimeoutError):
                lines.append(sock.recv(65535).split(b"\r\n", 1)[0])
    assert f"INVITE sip:nobody@{DOMAIN} SIP/2.0".encode() in lines, lines  # dispatched
    assert not any(b"480" in line for line in lines), lines
