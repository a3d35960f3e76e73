"""Input at the edges of what PostgreSQL holds, on the routes test_api_bounds does not
reach (the identity, audit, webhook, supervision and history routes of the app
`dialtone api` serves): a NUL in a path, a cursor or instant outside the database's
range, a credential with a NUL. Each is a 4xx problem, never a 500; an audited
command refused that way still leaves its audit row."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from application.identity.model import Role
from tests.integration.api_support import api_key, assert_problem, platform_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


@pytest.fixture
def admin(database_url: str) -> Iterator[TestClient]:
    with platform_api(database_url) as client:
        client.headers["Authorization"] = f"Bearer {api_key(database_url, Role.ADMIN)}"
        yield client


def cursor(*values: Any) -> str:
    """A cursor of the shape the API issues, holding `values`."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).rstrip(b"=").decode()


CALL = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/agents/a%00b/pause", {"reason": "lunch"}),
    ("PUT", "/v1/queues/sales/members/a%00b", {"penalty": 0}),
    ("PATCH", "/v1/webhooks/a%00b", {"url": "https://hooks.example.com/x"}),
    ("DELETE", f"/v1/calls/{CALL}/supervision/a%00b", None),
    ("PUT", "/v1/auth/users/a%00b/device", {"device": None}),
    ("PUT", "/v1/auth/users/a%00b/agent", {"agent": None}),
    ("POST", "/v1/auth/users/a%00b/disable", None),
    ("DELETE", "/v1/auth/keys/a%00b", None),
    ("DELETE", "/v1/auth/sip/credentials/a%00b", None),
])
def test_nul_in_a_path_is_a_422_not_a_500(admin: TestClient, method: str, path: str,
                                           body: dict[str, Any] | None) -> None:
    problem = assert_problem(admin.request(method, path, json=body), 422)
    assert problem["errors"][0]["location"] == "path"


def test_an_audited_command_refused_for_a_nul_in_its_path_is_recorded(
        admin: TestClient, database_url: str) -> None:
    assert_problem(admin.post("/v1/agents/a%00b/pause", json={"reason": "lunch"}), 422)
    with psycopg.connect(database_url) as conn:
        outcome, detail = conn.execute(
            "SELECT outcome, detail FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert outcome == "refused"
    assert detail["status"] == 422
    assert detail["key"] == "a\ufffdb"


@pytest.mark.parametrize("path", [
    f"/v1/cdrs?cursor={cursor('9999-12-31T23:00:00-05:00', str(uuid4()))}",
    f"/v1/cdrs?cursor={cursor('0001-01-01T00:00:00+05:00', str(uuid4()))}",
    f"/v1/audit?cursor={cursor(10**20)}",
    "/v1/live/at?t=0001-01-01T00:00:00Z",
    "/v1/agents/alice/at?t=0001-01-01T00:00:00Z",
    "/v1/live/service-level?queue=%00",
])
def test_values_the_database_cannot_hold_are_a_422_not_a_500(admin: TestClient,
                                                               path: str) -> None:
    assert_problem(admin.get(path), 422)


def test_a_nul_in_a_credential_is_refused_as_unauthenticated(admin: TestClient) -> None:
    login = admin.post("/v1/auth/token", data={"username": "a\x00b",
                                               "password": "a long enough password"})
    assert_problem(login, 401)
    assert_problem(admin.post("/v1/auth/refresh", json={"refresh_token": "dtr_a\x00b_c"}), 401)
