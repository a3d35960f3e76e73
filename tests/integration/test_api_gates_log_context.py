"""Every access gate puts the caller's tenant on the request's log lines
(docs/observability.md, Logs), whichever gate a route declares: `require`, and
the agent routes' `own_agent_or` and `own_calls_or`, by permission or by
ownership. A log line is rendered from these context variables, so a route's
own view of them is what its log lines carry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.auth.audit import REQUEST_ID_HEADER
from api.auth.dependencies import require
from api.auth.ownership import own_agent_or, own_calls_or
from api.auth.permissions import Permission
from api.auth.routes import router as auth_router
from application.identity import store
from application.identity.model import Role
from dialtone.commands.users import with_connection
from tests.integration.api_support import api_key, running_api
from tests.integration.auth_support import add_user, bearer, token_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

TENANT = "acme"

probes = APIRouter()


def _context() -> dict[str, Any]:
    return dict(structlog.contextvars.get_contextvars())


@probes.get("/probe/required", dependencies=[require(Permission.AGENTS_READ)])
async def required() -> dict[str, Any]:
    return _context()


@probes.get("/probe/agents/{key}", dependencies=[own_agent_or(Permission.AGENTS_READ)])
async def own_agent(key: str) -> dict[str, Any]:
    return _context()


@probes.get("/probe/calls", dependencies=[own_calls_or(Permission.CALLS_READ)])
async def own_calls() -> dict[str, Any]:
    return _context()


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with running_api(database_url, extra_routers=(auth_router, probes), role=None) as client:
        yield client


@pytest.mark.parametrize("path", ["/probe/required", "/probe/agents/alice", "/probe/calls"])
def test_a_caller_let_in_by_permission_has_its_tenant_on_the_request_log_lines(
    client: TestClient, database_url: str, path: str
) -> None:
    supervisor = bearer(api_key(database_url, Role.SUPERVISOR, tenant=TENANT))

    response = client.get(path, headers=supervisor)

    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == TENANT
    assert response.json()["request_id"] == response.headers[REQUEST_ID_HEADER]


@pytest.mark.parametrize("path", ["/probe/agents/alice", "/probe/calls"])
def test_an_agent_let_in_by_owning_the_agent_has_its_tenant_on_the_request_log_lines(
    client: TestClient, database_url: str, path: str
) -> None:
    add_user(database_url, "alice-user", Role.AGENT, tenant=TENANT)
    with_connection(database_url, lambda conn: store.set_user_agent(
        conn, "alice-user", TENANT, "alice"))
    agent = bearer(token_for(client, "alice-user"))

    response = client.get(path, headers=agent)

    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == TENANT
