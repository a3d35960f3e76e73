"""The agent role (issue 9): a user of role agent, linked by an admin to one
agent of their tenant, reads and acts on that agent only; any other agent's key
answers 404 (as a missing one), and everything else 403."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.dependencies import FORBIDDEN_TYPE
from api.problems import NOT_FOUND_TYPE
from application.identity import store
from application.identity.model import Role
from dialtone.commands.users import with_connection
from projections import callcentre
from streams.inprocess import InProcessProjectionRunner
from tests.integration.api_support import api_key, assert_problem, platform_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

PASSWORD = "a long enough password"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with platform_api(database_url) as client:
        yield client


@pytest.fixture
def project(client: TestClient, database_url: str) -> Callable[[], object]:
    """Brings the agents' read side up to date (no runner runs in this app)."""
    runner = InProcessProjectionRunner(client.app.state.callcentre,  # type: ignore[attr-defined]
                                       database_url, [callcentre.GROUP])
    return runner.catch_up


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def token(client: TestClient, username: str) -> str:
    response = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def alice(client: TestClient, database_url: str, project: Callable[[], object]) -> str:
    """Agents alice and bob; user alice-user (role agent) is agent alice. Her token."""
    admin = bearer(api_key(database_url, Role.ADMIN))
    for key in ("alice", "bob"):
        ok(client.post("/v1/agents", json={"key": key, "name": key.title()}, headers=admin), 201)
    user = ok(client.post("/v1/auth/users", headers=admin, json={
        "username": "alice-user", "role": "agent", "password": PASSWORD, "agent": "alice"}), 201)
    assert user["agent"] == "alice"
    project()
    return token(client, "alice-user")


def test_an_agent_user_logs_in_pauses_and_unpauses_themselves(client, alice, database_url,
                                                              project):
    me = bearer(alice)
    assert ok(client.post("/v1/agents/alice/login", json={"device_uri": "sip:alice@127.0.0.1"},
                          headers=me))["state"] == "available"
    assert ok(client.post("/v1/agents/alice/pause", json={"reason": "lunch"},
                          headers=me))["state"] == "paused"
    assert ok(client.post("/v1/agents/alice/unpause", headers=me))["state"] == "available"
    project()
    assert ok(client.get("/v1/agents/alice", headers=me))["key"] == "alice"
    ok(client.get("/v1/agents/alice/intervals", headers=me))
    assert ok(client.post("/v1/agents/alice/logout", headers=me))["state"] == "logged_out"
    # The audit names the person, not a key.
    admin = bearer(api_key(database_url, Role.ADMIN))
    users = ok(client.get("/v1/auth/users", headers=admin))["data"]
    alice_id = next(u["id"] for u in users if u["username"] == "alice-user")
    actions = [(e["action"], e["actor"]) for e in
               ok(client.get("/v1/audit", headers=admin, params={"actor": alice_id}))["data"]]
    assert ("agents.pause", alice_id) in actions


def test_another_agents_key_is_404_as_a_missing_one(client, alice, database_url):
    me = bearer(alice)
    missing = assert_problem(client.get("/v1/agents/nobody", headers=me), 404)
    for method, path, body in [("GET", "/v1/agents/bob", None),
                               ("GET", "/v1/agents/bob/intervals", None),
                               ("POST", "/v1/agents/bob/login", {"device_uri": "sip:x@127.0.0.1"}),
                               ("POST", "/v1/agents/bob/pause", {"reason": "lunch"}),
                               ("POST", "/v1/agents/bob/unpause", None),
                               ("POST", "/v1/agents/bob/logout", None),
                               ("POST", "/v1/agents/bob/wrap-up/finish", None)]:
        refused = assert_problem(client.request(method, path, json=body, headers=me), 404)
        assert refused["type"] == missing["type"] == NOT_FOUND_TYPE, (method, path)
    # bob was never touched; a supervisor still reaches him.
    supervisor = bearer(api_key(database_url, Role.SUPERVISOR))
    assert ok(client.get("/v1/agents/bob", headers=supervisor))["state"] == "logged_out"


def test_an_agent_user_is_refused_config_and_other_reads(client, alice):
    me = bearer(alice)
    for method, path, body in [("GET", "/v1/agents", None),
                               ("PATCH", "/v1/agents/alice", {"auto_pause_after": 2}),
                               ("DELETE", "/v1/agents/alice", None),
                               ("PUT", "/v1/agents/alice/skills/french", {"level": 3}),
                               ("GET", "/v1/queues", None),
                               ("POST", "/v1/queues", {"key": "q", "name": "Q"}),
                               ("GET", "/v1/auth/users", None)]:
        refused = assert_problem(client.request(method, path, json=body, headers=me), 403)
        assert refused["type"] == FORBIDDEN_TYPE, (method, path)


def test_the_link_is_set_and_cleared_by_an_admin(client, alice, database_url):
    admin = bearer(api_key(database_url, Role.ADMIN))
    me = bearer(alice)
    # Relinked to bob: bob is theirs now, alice answers 404 (the app drops its cache).
    assert client.put("/v1/auth/users/alice-user/agent", json={"agent": "bob"},
                      headers=admin).status_code == 204
    ok(client.get("/v1/agents/bob", headers=me))
    assert_problem(client.get("/v1/agents/alice", headers=me), 404)
    # No agent: nothing.
    assert client.put("/v1/auth/users/alice-user/agent", json={"agent": None},
                      headers=admin).status_code == 204
    assert_problem(client.get("/v1/agents/bob", headers=me), 404)
    assert_problem(client.put("/v1/auth/users/nobody/agent", json={"agent": "bob"},
                              headers=admin), 404)
    assert_problem(client.put("/v1/auth/users/alice-user/agent", json={"agent": "Not A Key"},
                              headers=admin), 422)
    # Only an admin links people to agents.
    supervisor = bearer(api_key(database_url, Role.SUPERVISOR))
    assert_problem(client.put("/v1/auth/users/alice-user/agent", json={"agent": "bob"},
                              headers=supervisor), 403)
    linked = with_connection(database_url, lambda conn: store.list_users(conn, "default"))
    assert [u.agent for u in linked if u.username == "alice-user"] == [None]
