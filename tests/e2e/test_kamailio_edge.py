"""The SIP edge's trust and flood checks (infra/kamailio/edge.cfg, docs/edge.md
"Trust and flood control"): one Kamailio with its registrar (WITH_REGISTRAR: one
device's credentials in the module's database, registrations in the shared Redis) in
front of one real worker for the module, sipp sending each bad case from a loopback
address of its own (a source blocked by one test never disturbs another), then a
normal call from yet another address. Pike's test starts a second Kamailio, whose
pike trips before its rate limit.

The module's Kamailio runs the shipped configuration with two limits lowered so
that a burst stays small: 20 requests per source per 10 s, 12 REGISTERs per 60 s
(a wrong-password storm, two REGISTERs per attempt, stays under both)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.kamailio import Kamailio, start_kamailio
from dialtone.commands.b2bua import spawn_worker
from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from tests.e2e.registrar_support import kamailio_db_url, provision
from tests.fixtures.kamailio import StartProxy
from tests.fixtures.redis import RedisServer, fresh_db, redis_server  # noqa: F401
from tests.fixtures.sip import Sipp, SippResult, Worker, free_udp_port, route_to, wait_until

pytestmark = pytest.mark.sip

ROOT = Path(__file__).resolve().parents[2]
ROUTED_UAC = ROOT / "bench" / "sipp" / "uac_bench.xml"  # follows Record-Route
RATE_LIMIT, REGISTER_LIMIT, AUTH_FAIL_LIMIT = 20, 12, 5
TENANT, DOMAIN, USER, PASSWORD = "edge", "edge.test", "erin", "erin-secret-1"


@dataclass
class Edge:
    kamailio: Kamailio
    worker: Worker
    uas_port: int

    @property
    def port(self) -> int:
        return self.kamailio.port

    @property
    def here(self) -> str:
        """The proxy's own address, as a R-URI host."""
        return f"127.0.0.1:{self.kamailio.port}"


@pytest.fixture(scope="module")
def edge(pg_admin_dsn: str, redis_server: RedisServer,  # noqa: F811 - the fixture
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp("edge")
    dsn = with_database(pg_admin_dsn, f"edge_{uuid.uuid4().hex[:16]}")
    ensure_database(dsn)
    apply_migrations(dsn)
    asyncio.run(provision(dsn, {USER: PASSWORD}, TENANT, DOMAIN))
    uas_port, worker_port = free_udp_port(), free_udp_port()
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(work / "data")}
    log = work / "b2bua.log"
    worker = Worker(worker_port, spawn_worker(
        worker_port, routes=[route_to(uas_port)],
        extra_args=["--no-callcentre"], env=env, log_file=log), log)
    kamailio: Kamailio | None = None
    try:
        wait_until(lambda: "listening on udp" in worker.log_text() or not worker.alive(),
                   "the worker listening")
        assert worker.alive(), worker.log_text()
        kamailio = start_kamailio(
            work / "kamailio", [worker_port], port=free_udp_port(),
            defines=["WITH_REGISTRAR", f"EDGE_RATE_LIMIT={RATE_LIMIT}",
                     f"EDGE_REGISTER_LIMIT={REGISTER_LIMIT}", f"AUTH_FAIL_LIMIT={AUTH_FAIL_LIMIT}"],
            values={"SUBSCRIBER_DB_URL": kamailio_db_url(dsn),
                    "REGISTRATION_REDIS_URL": fresh_db(redis_server).url})
        yield Edge(kamailio, worker, uas_port)
    finally:
        if kamailio is not None:
            kamailio.stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.stop()
        drop_database(dsn)


def request(sipp: Sipp, edge: Edge, source: str, *, expected: int, method: str = "INVITE",
            ruri_host: str = "", expires: str = "60", hop_limit: int = 70, calls: int = 1,
            rate: float = 10, timeout: float = 15) -> SippResult:
    """Send ``calls`` requests from ``source`` (sipp's -i) to the edge, each expecting
    the final status ``expected`` (``.ok``: every one got it in time)."""
    scenario = sipp.render("uac_edge_request.xml", method_name=method,
                           ruri_host=ruri_host or edge.here,
                           expires_value=expires, hop_limit=str(hop_limit),
                           expected=str(expected))
    return sipp.uac(scenario, edge.port, service="1000", calls=calls, rate=rate,
                    extra=["-i", source], timeout=timeout)


def probe(edge: Edge, source: str, *, wait: float = 2.0) -> str | None:
    """The status line of the edge's answer to one INVITE for a foreign domain sent
    from ``source``; None if nothing came back within ``wait`` seconds (dropped)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(wait)
        port = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        message = (f"INVITE sip:1000@foreign.example SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{call_id}\r\n"
                   f"From: <sip:probe@{source}>;tag=p1\r\nTo: <sip:1000@foreign.example>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                   f"Contact: <sip:probe@{source}:{port}>\r\nMax-Forwards: 70\r\n"
                   f"Content-Length: 0\r\n\r\n")
        sock.sendto(message.encode(), ("127.0.0.1", edge.port))
        try:
            return sock.recvfrom(65535)[0].split(b"\r\n", 1)[0].decode()
        except TimeoutError:
            return None


def kamailio_logged(edge: Edge, line: str) -> None:
    """Wait (bounded) for ``line`` in Kamailio's log: its children write it after
    they answer."""
    wait_until(lambda: line in edge.kamailio.log_text(), f"Kamailio logging {line!r}", 10)


def test_a_malformed_request_gets_the_sanity_checks_400(edge: Edge, sipp: Sipp) -> None:
    # Expires must be a number (sanity's expires_value check).
    result = request(sipp, edge, "127.0.0.11", expires="soon", expected=400)
    assert result.ok, result.errors + result.output
    kamailio_logged(edge, "edge: malformed INVITE from 127.0.0.11")


def test_max_forwards_zero_gets_483(edge: Edge, sipp: Sipp) -> None:
    result = request(sipp, edge, "127.0.0.12", hop_limit=0, expected=483)
    assert result.ok, result.errors + result.output


def test_an_invite_for_a_foreign_domain_gets_403(edge: Edge, sipp: Sipp) -> None:
    result = request(sipp, edge, "127.0.0.13", ruri_host="foreign.example", expected=403)
    assert result.ok, result.errors + result.output
    kamailio_logged(edge, "edge: INVITE from 127.0.0.13 for foreign domain foreign.example")
    assert "INVITE" not in edge.worker.log_text()  # never relayed to the worker


def test_a_burst_over_the_rate_limit_blocks_the_source_until_the_operator_lifts_it(
    edge: Edge, sipp: Sipp
) -> None:
    source = "127.0.0.14"
    # 15 INVITEs for a foreign domain at once: the first RATE_LIMIT are answered 403,
    # then the source is blocked and the rest get nothing (sipp times them out).
    burst = request(sipp, edge, source, ruri_host="foreign.example", expected=403,
                    calls=RATE_LIMIT + 5, rate=50, timeout=3)
    assert not burst.ok
    kamailio_logged(edge, f"edge: {source} blocked for 300 s (over EDGE_RATE_LIMIT")
    log = edge.kamailio.log_text()
    answered = log.count(f"edge: INVITE from {source} for foreign domain")
    assert 1 <= answered <= RATE_LIMIT, log
    assert source in edge.kamailio.rpc("htable.dump", "blocked")
    assert probe(edge, source) is None  # dropped, not answered
    assert probe(edge, "127.0.0.15") == "SIP/2.0 403 Relaying Forbidden"  # others are not

    edge.kamailio.rpc("htable.delete", "blocked", source)

    assert probe(edge, source) == "SIP/2.0 403 Relaying Forbidden"


def test_pike_blocks_a_source_sending_faster_than_its_density(
    edge: Edge, sipp: Sipp, kamailio: StartProxy
) -> None:
    # A Kamailio of its own whose pike trips long before its rate limit (5 requests
    # per 2 s, blocking somewhere between 5 and 15; the rate limit at 1000).
    proxy = kamailio([edge.worker], defines=["EDGE_PIKE_DENSITY=5", "EDGE_RATE_LIMIT=1000"])
    pike_edge = Edge(proxy, edge.worker, edge.uas_port)
    source = "127.0.0.19"

    burst = request(sipp, pike_edge, source, ruri_host="foreign.example", expected=403,
                    calls=30, rate=200, timeout=3)

    assert not burst.ok
    wait_until(lambda: f"edge: {source} blocked for 300 s (pike: request density)"
               in proxy.log_text(), "pike's block logged", 10)
    assert probe(pike_edge, source) is None


def test_a_register_flood_blocks_the_source(edge: Edge, sipp: Sipp) -> None:
    source = "127.0.0.16"
    # A REGISTER without credentials gets the registrar's challenge, until the source
    # is over REGISTER_LIMIT and is blocked (fewer than RATE_LIMIT requests).
    result = request(sipp, edge, source, method="REGISTER", expected=401,
                     calls=REGISTER_LIMIT, rate=20)
    assert result.ok, result.errors + result.output
    # One more: blocked, so dropped (no challenge within sipp's 2 s).
    assert not request(sipp, edge, source, method="REGISTER", expected=401, timeout=2).ok
    kamailio_logged(edge, f"edge: {source} blocked for 300 s (over EDGE_REGISTER_LIMIT")


def register(sipp: Sipp, edge: Edge, source: str, password: str, *, expected: int,
             calls: int = 1, timeout: float = 15) -> SippResult:
    """``calls`` registrations of USER@DOMAIN with ``password`` from ``source``, each
    answering the challenge and expecting the final status ``expected``."""
    scenario = sipp.render("uac_edge_register_auth.xml", expected=str(expected))
    return sipp.uac(scenario, edge.port, service=USER, calls=calls, rate=5,
                    keys={"domain": DOMAIN}, timeout=timeout,
                    extra=["-i", source, "-au", USER, "-ap", password])


def test_a_wrong_password_storm_blocks_the_source_not_the_device(edge: Edge, sipp: Sipp) -> None:
    storm = "127.0.0.17"
    result = register(sipp, edge, storm, "guess-1", expected=403, calls=AUTH_FAIL_LIMIT)
    assert result.ok, result.errors + result.output
    kamailio_logged(edge, f"edge: {storm} blocked for 300 s ({AUTH_FAIL_LIMIT} failed "
                          "authentications)")
    # Even the right password gets nothing from there now...
    assert not register(sipp, edge, storm, PASSWORD, expected=200, timeout=2).ok
    # ...while the device registers from its own address.
    result = register(sipp, edge, "127.0.0.18", PASSWORD, expected=200)
    assert result.ok, result.errors + result.output
    assert PASSWORD not in edge.kamailio.log_text()


def test_a_normal_call_through_the_edge_still_works_from_another_source(
    edge: Edge, sipp: Sipp
) -> None:
    uas = sipp.uas("uas", edge.uas_port)

    result = sipp.uac(ROUTED_UAC, edge.port, service="1000", extra=["-i", "127.0.0.20",
                                                                     "-d", "200"])

    assert result.ok, result.errors
    assert sipp.wait_uas(uas) == 0
    assert "audio bridged" in edge.worker.log_text()
