"""CI's memory stage (issue 15, section 7): queue calls run for about a minute through
the real processes of the Kafka deployment (``dialtone api``, ``relay``, ``worker``,
``router``, ``webhooks`` and a B2BUA worker), while a client reads the API and a
webhook subscriber on loopback receives every event. Every process' RSS and
PSS is sampled once a second from /proc/<pid>/smaps_rollup (tests/fixtures/memory.py);
the stage fails if a process exceeds its service's budget in infra/budgets.toml at any
time, or grows more than the budget's growth_percent over the measured window that
follows the warm-up.

It runs in the suite's pytest invocation (``./dev test``, so ``.ci/run``), as any
other test: a failure fails CI. Its figures are printed (``pytest -s``) and attached
to the test's report (``record_property``).
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import psycopg
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from api.routes.webhooks import new_secret
from application.callcentre import CallCentreService
from application.identity.model import Role
from dialtone import bootstrap
from dialtone.budgets import load_budgets
from dialtone.database import EVENT_TABLES_READY, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from domain.addressing import Target
from tests.fixtures.memory import Sampler, judge
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.sip import Sipp, StartWorker, free_udp_port
from tests.integration.api_support import api_key
from tests.integration.webhook_support import Receiver, receiving, subscribe

pytestmark = [pytest.mark.sip, pytest.mark.kafka]

BENCH_SIPP = Path(__file__).resolve().parents[2] / "bench" / "sipp"
DID = "7100"
AGENTS = 4
WARM_UP_S = 15.0  # start-up and the first calls: imports, pools, caches filling
WINDOW_S = 35.0  # the measured window, after the warm-up
TALK_MS = 3000  # each caller stays this long (queue wait, ring, talk)
API_READS = ("/v1/live", "/v1/cdrs?limit=50", "/v1/agents", "/v1/queues/memory/live",
             "/v1/calls")


def provision(database_url: str, agent_port: int) -> None:
    """Queue `memory` on DID with AGENTS agents logged in, all on the sipp UAS."""
    at = datetime.now(UTC)
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        queue = service.create_queue("memory", "Memory", "longest_idle", occurred_at=at,
                                     offer_timeout_s=10.0)
        for n in range(AGENTS):
            agent = service.create_agent(f"m{n}", f"Agent {n}", occurred_at=at)
            service.add_member(queue.id, agent.id, 0, at)
            service.login(agent.id, f"sip:m{n}@127.0.0.1:{agent_port}", at)
        service.create_number(DID, Target.queue(queue.id), occurred_at=at)


def silence_wav(path: Path, seconds: float = 2.0) -> Path:
    """A G.711 mu-law WAV of silence (0xFF), what sipp's rtp_stream plays."""
    data = b"\xff" * int(8000 * seconds)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ",
                         16, 7, 1, 8000, 8000, 1, 8, b"data", len(data))
    path.write_bytes(header + data)
    return path


class ApiReader(threading.Thread):
    """Reads the API's routes in turn, a few a second, counting the answers by route
    and status (0: no answer)."""

    def __init__(self, base: str, key: str) -> None:
        super().__init__(name="api-reader", daemon=True)
        self.base, self.key = base, key
        self.statuses: dict[str, Counter[int]] = {route: Counter() for route in API_READS}
        self.stopping = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx2.Client(base_url=self.base, headers=headers, timeout=10) as client:
            turn = 0
            while not self.stopping.wait(0.2):
                route = API_READS[turn % len(API_READS)]
                try:
                    status = client.get(route).status_code
                except httpx2.HTTPError:
                    status = 0
                self.statuses[route][status] += 1
                turn += 1

    def unanswered(self) -> dict[str, Counter[int]]:
        """Routes never answered 200, or answered something else than 200 or the
        API's transient 503 (a pool wait timing out on a loaded machine)."""
        return {route: seen for route, seen in self.statuses.items()
                if not seen[200] or set(seen) - {200, 503}}


# Calls the Faust worker projected (from the relay's topics) as answered.
ANSWERED = "SELECT count(*) FROM cdr WHERE answered_at IS NOT NULL"
# Events `dialtone webhooks` delivered (from the same topics) to the subscriber.
DELIVERED = "SELECT count(*) FROM webhook_attempts WHERE status_code BETWEEN 200 AND 299"


@pytest.fixture
def subscriber() -> Iterator[Receiver]:
    """A webhook receiver on loopback that verifies every signature and accepts."""
    with receiving(new_secret()) as receiver:
        yield receiver


def render(work: Path, scenario: str, **values: str) -> Path:
    """One of bench/sipp's scenarios (bench.callcentre's callers and agents) with its
    UPPERCASE placeholders filled."""
    text = (BENCH_SIPP / scenario).read_text()
    for name, value in values.items():
        text = text.replace(name, value)
    path = work / scenario
    path.write_text(text)
    return path


def _ready(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def transactions_ready(bootstrap: str, timeout: float = 90.0) -> None:
    """Wait until the broker serves a transactional producer: the relay exits at once
    (for its supervisor to restart it) when the transaction coordinator is not up yet,
    as on a broker this session has only just started."""
    deadline = time.monotonic() + timeout
    while True:
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10_000,
                                 transactional_id=f"memory-stage-{uuid.uuid4().hex[:8]}")
        try:
            producer.init_transactions()
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
        finally:
            producer.close(timeout=5)


def count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def test_every_service_stays_within_its_memory_budget_under_calls(
    database_url: str, kafka_bootstrap: str, tmp_path: Path, sipp: Sipp, b2bua: StartWorker,
    dialtone_processes: Callable[..., DialtoneProcess], record_property: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch, subscriber: Receiver,
) -> None:
    budgets = load_budgets()
    apply_migrations(database_url)
    agent_port = free_udp_port()
    provision(database_url, agent_port)  # the call-centre event tables made here
    # ...and the calls', once, before any service starts: processes starting together
    # each running eventsourcing's DDL race in PostgreSQL's catalog ("tuple
    # concurrently updated": a relay died of it in CI), as `dialtone up` avoids.
    bootstrap.call_service(database_url).close()
    monkeypatch.setenv(EVENT_TABLES_READY, "1")  # the B2BUA worker's environment too
    transactions_ready(kafka_bootstrap)
    env = {"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "DIALTONE_TOPIC_PREFIX": f"m{uuid.uuid4().hex[:8]}.",
           "DIALTONE_DATA_DIR": str(tmp_path / "data"), "DIALTONE_LOG_LEVEL": "WARNING",
           EVENT_TABLES_READY: "1"}
    http_port = free_port()
    subscribe(database_url, subscriber.url, subscriber.secret)
    started = {"api": dialtone_processes(["api", "--port", str(http_port)], env),
               "relay": dialtone_processes(["relay"], env),
               "worker": dialtone_processes(["worker"], env),
               "router": dialtone_processes(["router"], env),
               "webhooks": dialtone_processes(  # its SSRF guard lets the loopback one in
                   ["webhooks"], {**env, "DIALTONE_WEBHOOK_ALLOW_NETS": "127.0.0.1/32"})}
    worker = b2bua(args=["--max-calls", "2", "--pj-log-level", "1"])
    pids = {name: p.proc.pid for name, p in started.items() if p.proc is not None}
    pids["b2bua"] = worker.process.pid
    processes = tuple(started.values())
    base = f"http://127.0.0.1:{http_port}"

    with Sampler(pids) as sampler:
        wait_for(lambda: _ready(base), 90, "the API to be ready", processes=processes)
        sipp.uas(render(tmp_path, "uas_agent.xml", RING_MS="300"), agent_port,
                 calls=100_000, extra=["-rtp_echo"])
        audio = silence_wav(tmp_path / "caller.wav")
        callers = sipp.uac_background(
            render(tmp_path, "uac_queue.xml", AUDIO_FILE=str(audio)), worker.port,
            service=DID, calls=100_000, rate=2,
            extra=["-l", "2", "-d", str(TALK_MS), "-rp", "1000"],
            timeout=WARM_UP_S + WINDOW_S + 60)
        reader = ApiReader(base, api_key(database_url, Role.ADMIN))
        reader.start()
        time.sleep(WARM_UP_S)
        answered_before = count(database_url, ANSWERED)
        delivered_before = count(database_url, DELIVERED)
        window = (time.monotonic(), time.monotonic() + WINDOW_S)
        time.sleep(WINDOW_S)
        answered_after = count(database_url, ANSWERED)
        delivered_after = count(database_url, DELIVERED)
        reader.stopping.set()
        reader.join(15)
    callers.terminate()

    verdicts = judge(list(sampler.series.values()), budgets, window)
    lines = [v.describe() for v in verdicts]
    print("\n".join(["memory stage:", *lines]))
    record_property("memory", "; ".join(lines))
    assert {v.service for v in verdicts} == set(pids), [v.service for v in verdicts]
    failures = [f"{v.service} pid {v.pid}: {f}" for v in verdicts for f in v.failures()]
    assert not failures, "\n".join([*failures, "", *lines])
    # The load went through every process: calls answered (B2BUA, router) and
    # projected by the Faust worker from the relay's topics during the window, and
    # the API answered its reads.
    assert answered_after > answered_before, (answered_before, answered_after)
    assert delivered_after > delivered_before, (delivered_before, delivered_after)
    assert not reader.unanswered(), reader.statuses
    assert all(p.alive() for p in processes), [p.tail() for p in processes if not p.alive()]
    assert worker.alive(), worker.log_text()[-2000:]
