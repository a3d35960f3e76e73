"""Time travel (issue 11 §2) on a real PostgreSQL: the live view as of a past
instant t, from the projections of a whole history, equals what `live_snapshot`
said at t while the history had only reached t.

The history is the morning of test_callcentre_projections (recorded by the real
service and router). It is projected in steps; at each step's instant the live
view is recorded; then, with every event applied, `snapshot_at` is asked about
each of those instants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth.dependencies import Principal
from api.db import asyncpg_dsn
from api.live.at import snapshot_at
from api.live.snapshot import live_snapshot
from api.routes import agents, queues
from api.schemas.live import LiveSnapshot
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from projections import callcentre
from tests.integration.api_support import api_key, running_api
from tests.integration.test_callcentre_projections import at, history

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

# Between the morning's events (0 .. 240 s): before logins, during a pause, a call
# ringing alice, talking, one ringing bob, requeued, moved on, wrap-up, after the
# abandon.
INSTANTS = (5, 15, 50, 102, 107, 115, 122, 127, 150, 210, 235, 250)


@dataclass(frozen=True)
class Recorded:
    database_url: str
    live: dict[int, LiveSnapshot]  # what live_snapshot said at each instant, then


@pytest.fixture(scope="module")
def recorded(pg_admin_dsn: str) -> Iterator[Recorded]:
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        apply_migrations(database_url)
        _, events = history()
        live: dict[int, LiveSnapshot] = {}
        applied = 0
        with psycopg.connect(database_url, autocommit=True) as conn:
            for second in INSTANTS:
                upto = [e for e in events[applied:] if e.occurred_at <= at(second)]
                if upto:
                    callcentre.apply_batch(conn, upto, "store:test")
                    applied += len(upto)
                live[second] = read(database_url, lambda c, p, s=second: live_snapshot(c, p, at(s)))
            assert applied == len(events)
        yield Recorded(database_url, live)
    finally:
        drop_database(database_url)


def read(database_url: str, query: Any, role: Role = Role.SUPERVISOR, **kwargs: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await query(conn, Principal("t", "key", DEFAULT_TENANT, role, "r", **kwargs))
        finally:
            await conn.close()
    return asyncio.run(run())


def comparable(snapshot: LiveSnapshot) -> dict[str, Any]:
    """The snapshot without what time travel does not rebuild: calls in progress
    (null at t) and the store position (the live one was read mid-history)."""
    body = snapshot.model_dump(exclude={"calls", "position"})
    if body["summary"] is not None:
        body["summary"]["calls_in_progress"] = None
    return body


@pytest.mark.parametrize("second", INSTANTS)
def test_the_view_at_t_is_what_the_live_view_said_at_t(recorded: Recorded, second: int) -> None:
    then = read(recorded.database_url, lambda c, p: snapshot_at(c, p, at(second)))
    assert comparable(then) == comparable(recorded.live[second])


def test_the_morning_as_it_was(recorded: Recorded) -> None:
    """Spot checks that the instants cover what matters (so the comparison above
    compares something): a call ringing, a call waiting after leaving since, states."""
    ringing = read(recorded.database_url, lambda c, p: snapshot_at(c, p, at(115)))
    sales = ringing.queues[0]
    assert (sales.key, sales.now.calls_ringing, sales.now.calls_waiting) == ("sales", 1, 0)
    assert {a.key: a.state for a in ringing.agents} == {"alice": "on_call", "bob": "reserved"}
    waiting = read(recorded.database_url, lambda c, p: snapshot_at(c, p, at(150)))
    support = waiting.queues[1]
    # C3 abandoned at 240, C2 has left support since: at 150 both waited there.
    assert (support.now.calls_waiting, support.now.oldest_wait_s) == (2, 25.0)
    assert support.today.longest_wait_s == 25.0
    before = read(recorded.database_url, lambda c, p: snapshot_at(c, p, at(-1)))
    assert (before.queues, before.agents) == ([], [])  # nothing existed yet


def test_an_agent_sees_only_themselves_at_t(recorded: Recorded) -> None:
    then = read(recorded.database_url, lambda c, p: snapshot_at(c, p, at(115)), Role.AGENT,
                agent_key="bob")
    assert [(a.key, a.state) for a in then.agents] == [("bob", "reserved")]
    assert (then.queues, then.summary) == ([], None)


@pytest.fixture(scope="module")
def client(recorded: Recorded) -> Iterator[TestClient]:
    with running_api(recorded.database_url, extra_routers=(queues.router, agents.router),
                     role=Role.ANALYST) as api:
        yield api


def test_the_at_routes(client: TestClient, recorded: Recorded) -> None:
    t = at(150).isoformat()
    whole = ok(client, "/v1/live/at", t)
    assert whole["as_of"] == at(150).isoformat().replace("+00:00", "Z")
    assert [q["key"] for q in whole["queues"]] == ["sales", "support"]
    queue = ok(client, "/v1/queues/support/at", t)
    assert [q["key"] for q in queue["queues"]] == ["support"]
    assert queue["queues"][0] == whole["queues"][1]
    assert (queue["agents"], queue["summary"]) == ([], None)
    agent = ok(client, "/v1/agents/alice/at", t)
    assert [(a["key"], a["state"]) for a in agent["agents"]] == [("alice", "on_call")]
    assert agent["queues"] == []


def test_the_at_routes_refuse_bad_input(client: TestClient, recorded: Recorded) -> None:
    future = (datetime.now(at(0).tzinfo) + timedelta(hours=1)).isoformat()
    for path in ("/v1/live/at", "/v1/queues/sales/at", "/v1/agents/alice/at"):
        for t in (future, "yesterday", at(150).replace(tzinfo=None).isoformat()):
            response = client.get(path, params={"t": t})
            assert response.status_code == 422, (path, t, response.text)
            assert [e["field"] for e in response.json()["errors"]] == ["t"], response.text
        assert client.get(path).status_code == 422  # t is required
    for path in ("/v1/queues/nope/at", "/v1/agents/nope/at", "/v1/queues/sales/at"):
        instant = at(-1) if path.endswith("sales/at") else at(150)  # before it existed
        assert client.get(path, params={"t": instant.isoformat()}).status_code == 404, path
    other = {"Authorization": f"Bearer {api_key(recorded.database_url, Role.ADMIN, 'other')}"}
    for path in ("/v1/queues/sales/at", "/v1/agents/alice/at"):
        response = client.get(path, params={"t": at(150).isoformat()}, headers=other)
        assert response.status_code == 404, response.text
    agent = {"Authorization": f"Bearer {api_key(recorded.database_url, Role.AGENT)}"}
    response = client.get("/v1/live/at", params={"t": at(150).isoformat()}, headers=agent)
    assert response.status_code == 403  # no history:read


def ok(client: TestClient, path: str, t: str) -> dict[str, Any]:
    response = client.get(path, params={"t": t})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
