"""Agents read their own calls (issue 9), on a real PostgreSQL: the call
projection records the agents each call was connected to (a transfer adds the
next one), the rebuild records the same, and an agent user reads through the
API the calls their agent is or was on and no other (404, as a missing call).

Also: the events an API command stored are found with its actor and request id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.problems import NOT_FOUND_TYPE
from application.calls import CallService
from application.identity import store
from application.identity.model import Role
from dialtone.commands.users import with_connection
from dialtone.database import drop_database, ensure_database, eventsourcing_env, with_database
from domain.agent import Agent
from domain.values import Direction, Disposition, HangupSide, TransferKind
from projections import callcentre, calls
from streams.inprocess import InProcessProjectionRunner
from streams.rebuild import REBUILDABLE, rebuild
from tests.integration.api_support import api_key, assert_problem, platform_api

PASSWORD = "a long enough password"
Headers = dict[str, str]


@dataclass
class Calls:
    """The calls of the scenario, by who handled them."""

    alice: UUID  # alice is on it
    bob: UUID  # bob is on it
    transferred: UUID  # alice took it, then transferred it to bob
    alice_ended: UUID  # alice handled it; it has ended (a CDR)
    queued: UUID  # waiting in a queue: no agent yet


@dataclass
class World:
    database_url: str
    client: TestClient
    calls: Calls
    call_service: CallService
    alice: Headers  # the agent user linked to agent alice
    bob: Headers
    supervisor: Headers
    admin: Headers


def bearer(credential: str) -> Headers:
    return {"Authorization": f"Bearer {credential}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _agent_user(client: TestClient, admin: Headers, name: str) -> Headers:
    ok(client.post("/v1/auth/users", headers=admin, json={
        "username": f"{name}-user", "role": "agent", "password": PASSWORD, "agent": name}), 201)
    token = ok(client.post("/v1/auth/token",
                           data={"username": f"{name}-user", "password": PASSWORD}))
    return bearer(token["access_token"])


def _call_history(service: CallService, t0: datetime) -> Calls:
    """Real Call commands, as the SIP side issues them."""
    def call(n: int, *agents: str, ended: bool = False) -> UUID:
        at = t0 + timedelta(seconds=n)
        call_id = service.initiate_call(caller=f"+3222000{n}", callee="+3225550100",
                                        direction=Direction.INBOUND, trunk=None,
                                        sip_call_id=f"agent-calls-{n}-{t0.timestamp()}",
                                        occurred_at=at)
        service.queue_call(call_id, "sales", at)
        for i, agent in enumerate(agents):
            if i > 0:  # the previous agent sent the caller on, to the next one
                service.transfer_call(call_id, TransferKind.BLIND, "queue:support", at)
                service.queue_call(call_id, "support", at)
            service.connect_agent(call_id, agent, at)
            service.answer_call(call_id, at)
        if ended:
            service.end_call(call_id, disposition=Disposition.ANSWERED,
                             hangup_cause="normal_clearing", hangup_side=HangupSide.CALLER,
                             sip_status=200, occurred_at=at + timedelta(seconds=30))
        return call_id

    return Calls(alice=call(1, "alice"), bob=call(2, "bob"),
                 transferred=call(3, "alice", "bob"), alice_ended=call(4, "alice", ended=True),
                 queued=call(5))


@pytest.fixture(scope="module")
def world(pg_admin_dsn: str) -> Iterator[World]:
    """One scenario for the module's tests (they read it; the few writes they make
    touch nothing another test checks)."""
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        yield from _world(database_url)
    finally:
        drop_database(database_url)


def _world(database_url: str) -> Iterator[World]:
    with platform_api(database_url) as client, \
            CallService(env=eventsourcing_env(database_url)) as call_service:
        admin = bearer(api_key(database_url, Role.ADMIN))
        for key in ("alice", "bob"):
            ok(client.post("/v1/agents", json={"key": key, "name": key.title()},
                           headers=admin), 201)
        centre = client.app.state.callcentre  # type: ignore[attr-defined]
        InProcessProjectionRunner(centre, database_url, [callcentre.GROUP]).catch_up()
        history = _call_history(call_service, datetime.now(UTC) - timedelta(hours=1))
        InProcessProjectionRunner(call_service, database_url, [calls.GROUP]).catch_up()
        yield World(database_url, client, history, call_service,
                    _agent_user(client, admin, "alice"), _agent_user(client, admin, "bob"),
                    bearer(api_key(database_url, Role.SUPERVISOR)), admin)


def _live_agents(database_url: str) -> dict[UUID, list[str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT call_id, agents FROM call_live").fetchall()
    return dict(rows)


def test_the_live_calls_record_their_agents_and_the_rebuild_agrees(world):
    c, database_url = world.calls, world.database_url
    projected = _live_agents(database_url)
    assert projected == {c.alice: ["alice"], c.bob: ["bob"], c.transferred: ["alice", "bob"],
                         c.queued: []}
    rebuild(world.call_service, database_url, REBUILDABLE)
    assert _live_agents(database_url) == projected


def _listed(client: TestClient, headers: Headers, path: str = "/v1/calls",
            **params: str) -> set[UUID]:
    body = ok(client.get(path, headers=headers, params=params))
    return {UUID(row["call_id"]) for row in body["data"]}


def test_an_agent_lists_only_the_calls_their_agent_is_on(world):
    c, client = world.calls, world.client
    assert _listed(client, world.alice) == {c.alice, c.transferred}
    assert _listed(client, world.bob) == {c.bob, c.transferred}
    assert _listed(client, world.supervisor) == {c.alice, c.bob, c.transferred, c.queued}
    # A filter narrows the agent's own calls; it never widens them.
    assert _listed(client, world.alice, queue="sales") == {c.alice}
    listed = ok(client.get("/v1/calls", headers=world.alice))["data"]
    assert {row["call_id"]: row["agents"] for row in listed}[str(c.transferred)] == [
        "alice", "bob"]


def test_an_agent_reads_their_calls_and_gets_404_for_any_other(world):
    c, client = world.calls, world.client
    for call_id in (c.alice, c.transferred, c.alice_ended):
        assert ok(client.get(f"/v1/calls/{call_id}", headers=world.alice))["call_id"] == str(
            call_id)
        assert ok(client.get(f"/v1/calls/{call_id}/timeline", headers=world.alice))["events"]
    assert ok(client.get(f"/v1/calls/{c.alice_ended}", headers=world.alice))["status"] == "ended"
    missing = assert_problem(client.get(f"/v1/calls/{UUID(int=7)}", headers=world.alice), 404)
    for call_id in (c.bob, c.queued):
        for path in (f"/v1/calls/{call_id}", f"/v1/calls/{call_id}/timeline"):
            refused = assert_problem(client.get(path, headers=world.alice), 404)
            assert refused["type"] == missing["type"] == NOT_FOUND_TYPE, path
    assert_problem(client.get(f"/v1/calls/{c.alice_ended}", headers=world.bob), 404)
    ok(client.get(f"/v1/calls/{c.bob}", headers=world.supervisor))


def test_an_agent_reads_only_the_cdrs_of_calls_their_agent_handled(world):
    c, client, database_url = world.calls, world.client, world.database_url
    assert _listed(client, world.alice, "/v1/cdrs") == {c.alice_ended}
    assert _listed(client, world.bob, "/v1/cdrs") == set()
    assert _listed(client, world.alice, "/v1/cdrs", agent="bob") == set()
    assert _listed(client, world.supervisor, "/v1/cdrs") == {c.alice_ended}
    # An agent-role key is linked to no agent: it handled no call.
    no_agent = bearer(api_key(database_url, Role.AGENT))
    assert _listed(client, no_agent) == set()
    assert _listed(client, no_agent, "/v1/cdrs") == set()
    assert_problem(client.get(f"/v1/calls/{c.alice}", headers=no_agent), 404)


def _stored_events(service: Any, after: int) -> list[Any]:
    return list(service.recorder.select_notifications(after + 1, 100))


def test_the_events_an_api_command_stored_carry_its_actor_and_request_id(world):
    client, centre = world.client, world.client.app.state.callcentre
    head = centre.recorder.max_notification_id() or 0
    response = client.post("/v1/agents/alice/login", json={"device_uri": "sip:alice@127.0.0.1"},
                           headers={**world.alice, "X-Request-ID": "login-of-alice-1"})
    ok(response)
    stored = _stored_events(centre, head)
    assert [n.originator_id for n in stored] == [Agent.id_for("alice")]
    assert stored[0].topic.endswith("Agent.LoggedIn")
    found = ok(client.get("/v1/audit", headers=world.admin,
                          params={"position": str(stored[0].id)}))["data"]
    assert [(e["action"], e["request_id"], e["actor_kind"], e["event_store"], e["positions"])
            for e in found] == [
        ("agents.login", "login-of-alice-1", "user", "CallCentreService", [stored[0].id])]
    users = ok(client.get("/v1/auth/users", headers=world.admin))["data"]
    assert found[0]["actor"] == next(u["id"] for u in users if u["username"] == "alice-user")
    # A refused command stored nothing and names no event.
    refused = client.post("/v1/agents/alice/login", json={"device_uri": "sip:a@127.0.0.1"},
                          headers={**world.alice, "X-Request-ID": "login-of-alice-2"})
    assert refused.status_code == 409, refused.text
    entries = ok(client.get("/v1/audit", headers=world.admin))["data"]
    assert [e["positions"] for e in entries if e["request_id"] == "login-of-alice-2"] == [[]]


def test_a_call_timeline_shows_the_actor_of_the_command_that_stored_each_event(world):
    c, client, database_url = world.calls, world.client, world.database_url
    events = ok(client.get(f"/v1/calls/{c.alice}/timeline", headers=world.supervisor))["events"]
    assert {(e["actor"], e["request_id"]) for e in events} == {(None, None)}  # all from SIP
    answered = next(e for e in events if e["type"] == "dialtone.call.answered.v1")
    # An audit row naming that position, as a command that stored the event writes it.
    async def record(conn: Any) -> None:
        await store.record_audit(conn, store.AuditEntry(
            action="calls.answer", outcome="ok", request_id="rq-answer", actor="user-7",
            actor_kind="user", tenant="default", aggregate_id=c.alice,
            event_store=CallService.name, positions=(answered["position"],)))

    with_connection(database_url, record)
    events = ok(client.get(f"/v1/calls/{c.alice}/timeline", headers=world.alice))["events"]
    shown = {e["type"]: (e["actor"], e["actor_kind"], e["request_id"]) for e in events}
    assert shown["dialtone.call.answered.v1"] == ("user-7", "user", "rq-answer")
    assert shown["dialtone.call.initiated.v1"] == (None, None, None)
