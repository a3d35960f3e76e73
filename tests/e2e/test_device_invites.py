"""Calls from devices (docs/edge.md, "Calls from devices"): one Kamailio with its
registrar (WITH_REGISTRAR: the tenant's devices in the module's database,
registrations in a real redis-server) in front of one real call-centre worker with
device authentication on (--device-auth), real pjsua2 softphones and sipp.

A device's INVITE is challenged at the edge and, once its credentials check, goes
on as its tenant's call; anything that is not one of our devices reaches our
numbers and nothing else, whatever caller ID or tenant header it presents."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from application.callcentre import CallCentreService
from devtools.kamailio import Kamailio, start_kamailio
from devtools.phones import phones
from dialtone.commands.b2bua import spawn_worker
from dialtone.database import drop_database, ensure_database, eventsourcing_env, with_database
from dialtone.migrations import apply_migrations
from domain.addressing import Target
from domain.call import Call
from tests.e2e.registrar_support import kamailio_db_url, provision
from tests.fixtures.redis import RedisServer, fresh_db, redis_server  # noqa: F401
from tests.fixtures.sip import (
    CallStore,
    Sipp,
    SippResult,
    Worker,
    free_udp_port,
    route_to,
    wait_until,
)

pytestmark = pytest.mark.sip

TENANT, DOMAIN, DEVICE, PASSWORD = "acme", "acme.test", "desk-101", "desk-101-secret"
ROUTED_UAC = Path(__file__).resolve().parents[2] / "bench" / "sipp" / "uac_bench.xml"
NUMBER = "5550100"  # acme's number: a queue with nobody in it, which answers at once
EXTERNAL = "1444000"  # no tenant's: the worker's dialplan sends it to the module's callee


@dataclass
class Edge:
    kamailio: Kamailio
    worker: Worker
    uas_port: int
    dsn: str
    work: Path

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.kamailio.port}"


def _number(dsn: str) -> None:
    centre = CallCentreService(env=eventsourcing_env(dsn))
    try:
        acme, now = centre.scoped(TENANT), datetime.now(UTC)
        queue = acme.create_queue("front", "Front desk", "longest_idle", occurred_at=now)
        acme.create_number(NUMBER, Target.queue(queue.id), occurred_at=now)
    finally:
        centre.close()


@pytest.fixture(scope="module")
def edge(pg_admin_dsn: str, redis_server: RedisServer,  # noqa: F811 - the fixture
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp("devices")
    dsn = with_database(pg_admin_dsn, f"devices_{uuid.uuid4().hex[:16]}")
    ensure_database(dsn)
    apply_migrations(dsn)
    asyncio.run(provision(dsn, {DEVICE: PASSWORD}, TENANT, DOMAIN))
    _number(dsn)
    uas_port, worker_port = free_udp_port(), free_udp_port()
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(work / "data")}
    log = work / "b2bua.log"
    worker = Worker(worker_port, spawn_worker(
        worker_port, routes=[route_to(uas_port)], extra_args=["--device-auth"], env=env,
        log_file=log), log)
    kamailio: Kamailio | None = None
    try:
        wait_until(lambda: "listening on udp" in worker.log_text() or not worker.alive(),
                   "the worker listening", timeout=90)
        assert worker.alive(), worker.log_text()
        kamailio = start_kamailio(work / "kamailio", [worker_port], port=free_udp_port(),
                                  defines=["WITH_REGISTRAR"],
                                  values={"SUBSCRIBER_DB_URL": kamailio_db_url(dsn),
                                          "REGISTRATION_REDIS_URL": fresh_db(redis_server).url})
        yield Edge(kamailio, worker, uas_port, dsn, work)
    finally:
        if kamailio is not None:
            kamailio.stop()
        worker.stop()
        drop_database(dsn)


def calls_from(dsn: str, caller: str) -> list[Call]:
    """Every call stored whose caller is ``caller``."""
    store = CallStore(dsn)
    try:
        ids = list(store.histories())
        calls = [store.service.get_call(call_id) for call_id in ids]
    finally:
        store.close()
    return [call for call in calls if call.caller == caller]


def present(sipp: Sipp, edge: Edge, caller: str, callee: str, *, status: int,
            claim: str = "Subject: no claim") -> SippResult:
    """One INVITE through the edge from sipp (no device of ours) showing ``caller``
    as its caller ID and the header line ``claim``, expecting ``status``."""
    scenario = sipp.render("uac_caller_id.xml", caller_user=caller, claim_header=claim,
                           status=str(status))
    return sipp.uac(scenario, edge.kamailio.port, service=callee)


def test_a_devices_call_is_challenged_then_goes_out_as_its_tenants_call(
        edge: Edge, sipp: Sipp) -> None:
    callee = sipp.uas("uas", edge.uas_port)
    with phones() as start:
        phone = start(DEVICE, free_udp_port(), edge.work / "phones",
                      args=["--registrar", edge.registrar, "--domain", DOMAIN,
                            "--hangup-after", "0.5"],
                      env={**os.environ, "DIALTONE_SIP_PASSWORD": PASSWORD})
        assert phone.wait("registration", 30)["status"] == 200

        phone.send(f"dial sip:{EXTERNAL}@127.0.0.1:{edge.kamailio.port}")
        phone.wait("state", 20, state="CONFIRMED")  # after the edge's 407, answered
        phone.wait("state", 20, state="DISCONNECTED")
    assert sipp.wait_uas(callee) == 0

    wait_until(lambda: bool(calls_from(edge.dsn, DEVICE)), "the device's call stored")
    [call] = calls_from(edge.dsn, DEVICE)
    assert (call.tenant, call.direction.value, call.callee) == (TENANT, "internal", EXTERNAL)
    assert f"INVITE from 127.0.0.1 for sip:{DEVICE}@{DOMAIN}" in edge.kamailio.log_text()
    assert PASSWORD not in edge.kamailio.log_text() + edge.worker.log_text()


def test_a_device_with_the_wrong_password_cannot_call_out(edge: Edge) -> None:
    with phones() as start:
        phone = start(DEVICE, free_udp_port(), edge.work / "phones",
                      args=["--registrar", edge.registrar, "--domain", DOMAIN],
                      env={**os.environ, "DIALTONE_SIP_PASSWORD": "not-the-password"})
        assert phone.wait("registration", 30)["status"] == 403

        phone.send(f"dial sip:{EXTERNAL}@127.0.0.1:{edge.kamailio.port}")
        assert phone.wait("state", 20, state="DISCONNECTED")["status"] == 403


def test_a_carrier_call_presenting_a_tenants_number_to_go_out_is_refused(
        edge: Edge, sipp: Sipp) -> None:
    result = present(sipp, edge, NUMBER, EXTERNAL, status=403)

    assert result.ok, result.errors + result.output
    assert "from no device the edge authenticated" in edge.worker.log_text()
    assert calls_from(edge.dsn, NUMBER) == []  # nothing stored, nothing went out


def test_a_forged_tenant_header_is_removed_by_the_edge(edge: Edge, sipp: Sipp) -> None:
    result = present(sipp, edge, "mallory", EXTERNAL, status=403,
                     claim=f"X-Dialtone-Tenant: {TENANT}")

    assert result.ok, result.errors + result.output
    assert calls_from(edge.dsn, "mallory") == []


def test_a_carrier_call_to_a_tenants_number_still_comes_in(edge: Edge, sipp: Sipp) -> None:
    result = sipp.uac(ROUTED_UAC, edge.kamailio.port, service=NUMBER, extra=["-d", "300"])

    assert result.ok, result.errors + result.output
    wait_until(lambda: bool(calls_from(edge.dsn, "sipp")), "the inbound call stored")
    [call] = calls_from(edge.dsn, "sipp")
    assert (call.tenant, call.direction.value, call.trunk) == (TENANT, "inbound", NUMBER)


def raw_invite(edge: Edge, claim: str) -> list[str]:
    """The status lines the edge answers to one INVITE carrying the header text
    ``claim`` as sent (sipp would normalise its line ends), within 8 seconds."""
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        message = (f"INVITE sip:{EXTERNAL}@127.0.0.1:{edge.kamailio.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:10]};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:{NUMBER}@carrier.example>;tag=t1\r\n"
                   f"To: <sip:{EXTERNAL}@127.0.0.1>\r\n{claim}Call-ID: {call_id}\r\n"
                   f"CSeq: 1 INVITE\r\nContact: <sip:{NUMBER}@127.0.0.1:{local}>\r\n"
                   f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        sock.sendto(message.encode(), ("127.0.0.1", edge.kamailio.port))
        answers: list[str] = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not any(
                not a.startswith("SIP/2.0 1") for a in answers):
            with contextlib.suppress(TimeoutError):
                answers.append(sock.recvfrom(65535)[0].decode().split("\r\n")[0])
    return answers


def test_a_tenant_header_hidden_behind_a_lone_cr_is_no_claim(edge: Edge) -> None:
    """Kamailio reads `Subject: hi<CR>X-Dialtone-Tenant: acme` as one Subject (its
    remove_hf finds nothing), pjsip as two headers: the worker must not see a claim."""
    answers = raw_invite(edge, f"Subject: hi\rX-Dialtone-Tenant: {TENANT}\r\n")

    assert answers[-1] == "SIP/2.0 403 Forbidden", answers
    assert calls_from(edge.dsn, NUMBER) == []
