"""Deny by default, checked on the whole API as the composition root builds it:
every operation of its OpenAPI document declares a permission (or is marked
public); without a credential it answers 401, to a role without the permission
403, and a role with it gets past the check."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.dependencies import (
    FORBIDDEN_TYPE,
    UNAUTHENTICATED_TYPE,
    operation_alternatives,
    operation_permissions,
)
from api.auth.permissions import ROLE_PERMISSIONS
from application.identity.model import Role
from dialtone.database import drop_database, ensure_database, with_database
from tests.integration.api_support import api_key, assert_problem, platform_api

METHODS = {"get", "put", "post", "delete", "patch"}
# A well-formed value for each path parameter, so that only access control decides.
SAMPLES = {"call_id": "00000000-0000-4000-8000-000000000001", "did": "+3225550100",
           "digit": "1"}
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def served(pg_admin_dsn: str) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    """The app of `dialtone.bootstrap.http_app` on one migrated database (shared by
    the module's tests: they only read, or are refused), and a key per role."""
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        with platform_api(database_url, raise_errors=False) as client:
            keys = {role: api_key(database_url, role) for role in Role}
            yield client, keys
    finally:
        drop_database(database_url)


def operations(client: TestClient) -> list[Operation]:
    document = client.get("/openapi.json").json()
    return [(method, path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "x"), path)


def test_every_operation_declares_a_permission_or_is_public(served):
    client, _ = served
    undeclared = [f"{m.upper()} {p}" for m, p, op in operations(client)
                  if not operation_permissions(op) and not op.get("x-public")]
    assert undeclared == []
    public = sorted(p for _, p, op in operations(client) if op.get("x-public"))
    assert public == ["/healthz", "/metrics", "/readyz", "/v1/auth/refresh",
                      "/v1/auth/session", "/v1/auth/session", "/v1/auth/session/refresh",
                      "/v1/auth/token"]  # the browser's login, logout and refresh
    for method, path, op in operations(client):
        assert not (op.get("x-public") and operation_permissions(op)), f"{method} {path}"


def test_without_a_credential_every_operation_but_the_public_ones_is_401(served):
    client, _ = served
    for method, path, op in operations(client):
        response = client.request(method, concrete(path))
        where = f"{method.upper()} {path}"
        if op.get("x-public"):
            assert response.status_code != 401, where
            continue
        body = assert_problem(response, 401)
        assert body["type"] == UNAUTHENTICATED_TYPE, where
        assert response.headers["www-authenticate"] == "Bearer", where
        forged = client.request(method, concrete(path),
                                headers={"Authorization": "Bearer dtk_nope_not-a-key"})
        assert forged.status_code == 401, where


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_refused_exactly_what_its_permissions_lack(served, role):
    client, keys = served
    headers = {"Authorization": f"Bearer {keys[role]}"}
    checked = 0
    for method, path, op in operations(client):
        if op.get("x-public"):
            continue
        # Each security requirement is an alternative (`own_agent_or` routes have two:
        # the permission, or `agents:self` on the caller's own agent).
        alternatives = operation_alternatives(op)
        granted = {p.value for p in ROLE_PERMISSIONS[role]}
        let_in = any(needed <= granted for needed in alternatives)
        if let_in and "text/event-stream" in op["responses"].get("200", {}).get("content", {}):
            continue  # an endless stream: tests/integration/test_live_stream.py lets it in
        response = client.request(method, concrete(path), headers=headers)
        where = f"{role.value}: {method.upper()} {path} needs one of {alternatives}"
        if let_in:
            assert response.status_code not in (401, 403), (where, response.text)
        else:
            body = assert_problem(response, 403)
            assert body["type"] == FORBIDDEN_TYPE, where
            checked += 1
    assert checked > 0 or role is Role.ADMIN


def test_an_agents_own_routes_take_the_permission_or_agents_self(served):
    client, _ = served
    document = client.get("/openapi.json").json()
    own = {(m, p) for m, p, op in operations(client)
           if {"agents:self"} in operation_alternatives(op)}
    assert own == {("get", "/v1/agents/{key}"), ("get", "/v1/agents/{key}/intervals"),
                   *(("post", f"/v1/agents/{{key}}/{action}") for action in
                     ("login", "pause", "unpause", "logout", "wrap-up/finish")),
                   # The call reads, narrowed to the calls of one's own agent.
                   ("get", "/v1/calls"), ("get", "/v1/calls/{call_id}"),
                   ("get", "/v1/calls/{call_id}/timeline"), ("get", "/v1/cdrs"),
                   ("get", "/v1/calls/{call_id}/recording")}
    assert document["paths"]["/v1/agents/{key}/pause"]["post"]["security"] == [
        {"OAuth2PasswordBearer": ["agents:write"]}, {"OAuth2PasswordBearer": ["agents:self"]}]
