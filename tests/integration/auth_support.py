"""Helpers for the access-control tests: a running API with chosen auth
settings, users seeded through the real service, logins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.auth.authenticator import Authenticator
from api.auth.routes import router as auth_router
from application.identity import service
from application.identity.model import Role, User
from application.identity.settings import AuthSettings
from dialtone.commands.users import with_connection
from tests.integration.api_support import running_api

PASSWORD = "a long enough password"


@contextmanager
def auth_api(database_url: str, *, routers: tuple[APIRouter, ...] = (),
             **settings: Any) -> Iterator[TestClient]:
    """The real app with the auth routes (and `routers`); account state is re-read on
    every request unless `state_ttl_s` is given."""
    settings.setdefault("state_ttl_s", 0)
    with running_api(database_url, extra_routers=(auth_router, *routers), role=None) as client:
        client.app.state.auth = Authenticator(AuthSettings(**settings))  # type: ignore[attr-defined]
        yield client


def add_user(database_url: str, username: str, role: Role, tenant: str = "default",
             password: str = PASSWORD) -> User:
    return with_connection(database_url, lambda conn: service.add_user(
        conn, tenant, username, role, password))


def login(client: TestClient, username: str, password: str = PASSWORD,
          **headers: str) -> httpx2.Response:
    response: httpx2.Response = client.post(
        "/v1/auth/token", data={"username": username, "password": password}, headers=headers)
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = login(client, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
