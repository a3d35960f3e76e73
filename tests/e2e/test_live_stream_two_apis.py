"""Two `dialtone api` processes on one database, no stickiness (issue 10.2): each
learns of projection commits by itself (LISTEN/NOTIFY) and streams the same
changes, with the same ids, of real call-centre commands projected in-process;
a client that read one resumes on the other with `Last-Event-ID`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx2
import pytest

from application.callcentre import CallCentreService
from application.identity.model import Role
from dialtone.bootstrap import callcentre_service, inprocess_runners
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from domain.agent import Agent
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.integration.api_support import api_key
from tests.integration.live_support import SseReader, wait_until

STREAM = "/v1/live/stream"


@pytest.fixture
def centre(database_url: str) -> Iterator[CallCentreService]:
    apply_migrations(database_url)
    service = callcentre_service(database_url)
    runners = inprocess_runners(database_url)
    for runner in runners:
        runner.start()
    yield service
    for runner in runners:
        runner.stop()
    service.close()


def _ready(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def agents_of(reader: SseReader) -> dict[str, str]:
    state = reader.state() or {}
    return {a["key"]: a["state"] for a in (state.get("agents") or {}).values()}


def facts(reader: SseReader) -> list[tuple[str, str, str]]:
    return sorted((x["key"], x["state"], x["state_since"])
                  for x in reader.state()["agents"].values())


def test_two_api_processes_stream_the_same_changes(
    database_url: str, centre: CallCentreService,
    dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    bases, apis = [], []
    for _ in range(2):
        port = free_port()
        apis.append(dialtone_processes(["api", "--port", str(port)],
                                       {"DATABASE_URL": database_url}))
        bases.append(f"http://127.0.0.1:{port}")
        # One after the other: two processes making eventsourcing's tables at the same
        # moment race in PostgreSQL's catalog ("tuple concurrently updated").
        wait_for(lambda b=bases[-1]: _ready(b), 60, f"{bases[-1]} ready",  # type: ignore[misc]
                 processes=tuple(apis))
    headers = {"Authorization": f"Bearer {api_key(database_url, Role.SUPERVISOR)}"}
    readers = [SseReader(base + STREAM, headers).start() for base in bases]
    try:
        for reader in readers:
            assert reader.status == 200
            assert reader.wait_for(1)[0].event == "snapshot"
        centre.create_agent("alice", "Alice", occurred_at=datetime.now(UTC))
        for reader in readers:
            wait_until(lambda r=reader: agents_of(r) == {"alice": "logged_out"}, 60,  # type: ignore[misc]
                       "alice on both streams")
        centre.login(Agent.id_for("alice"), "sip:alice@127.0.0.1", datetime.now(UTC))
        for reader in readers:
            wait_until(lambda r=reader: agents_of(r) == {"alice": "available"}, 60,  # type: ignore[misc]
                       "alice available on both streams")
        a, b = readers
        wait_until(lambda: a.events[-1].id == b.events[-1].id, 30, "both at the same position")
        # The same facts (ages differ: each process computes them at its own read).
        assert facts(a) == facts(b)
        assert [e.id for e in a.events] == sorted({e.id for e in a.events})  # no duplicate

        # A client of A that had seen A's first change goes on at B after it.
        seen = next(e.id for e in a.events if e.event == "change")
        resumed = SseReader(bases[1] + STREAM, {**headers, "Last-Event-ID": str(seen)}).start()
        resumed.wait_for(1)
        if resumed.events[0].event == "change":  # B had that position: the rest, no repeat
            assert all(e.id > seen for e in resumed.events)
        else:  # B coalesced it with another commit: a fresh snapshot, not an error
            assert resumed.events[0].id >= seen
        resumed.close()
    finally:
        for reader in readers:
            reader.close()
