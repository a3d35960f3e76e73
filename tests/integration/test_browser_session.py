"""The browser's side of the API (issue 10.3): the cookie session (same login as
POST /v1/auth/token), its CSRF defence, logout; the pages and their assets; and
/docs and /redoc served from the installed package rather than a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth.cookies import CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, SESSION_COOKIE
from application.identity.model import Role
from tests.integration.api_support import platform_api
from tests.integration.auth_support import PASSWORD, add_user, token_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SESSION = "/v1/auth/session"


@pytest.fixture
def browser(database_url: str) -> Iterator[TestClient]:
    with platform_api(database_url) as client:
        add_user(database_url, "sam", Role.SUPERVISOR)
        add_user(database_url, "ada", Role.ADMIN)
        yield client


def log_in(client: TestClient, username: str) -> str:
    response = client.post(SESSION, data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_the_session_cookies_are_httponly_strict_and_hold_no_token_in_the_body(
        browser: TestClient) -> None:
    response = browser.post(SESSION, data={"username": "sam", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json()) == {"expires_in", "csrf_token"}
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    for name in (SESSION_COOKIE, REFRESH_COOKIE):
        assert "HttpOnly" in cookies[name]
        assert "SameSite=strict" in cookies[name]
    assert "HttpOnly" not in cookies[CSRF_COOKIE]  # the page's script reads it
    assert "Path=/v1/auth/session" in cookies[REFRESH_COOKIE]


def test_a_wrong_password_sets_no_cookie(browser: TestClient) -> None:
    response = browser.post(SESSION, data={"username": "sam", "password": "not it at all"})
    assert response.status_code == 401
    assert not browser.cookies


def test_the_cookie_lets_the_browser_read_with_the_role_it_has(browser: TestClient) -> None:
    assert browser.get("/v1/live").status_code == 401
    log_in(browser, "sam")
    assert browser.get("/v1/live").status_code == 200
    assert browser.get("/v1/auth/users").status_code == 403  # a supervisor is no admin


def test_a_change_with_the_cookie_needs_the_csrf_header(browser: TestClient) -> None:
    csrf = log_in(browser, "ada")
    body = {"key": "alice", "name": "Alice"}
    refused = browser.post("/v1/agents", json=body)
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:dialtone:problem:csrf"
    assert browser.post("/v1/agents", json=body, headers={CSRF_HEADER: "guess"}).status_code == 403
    assert browser.post("/v1/agents", json=body, headers={CSRF_HEADER: csrf}).status_code == 201


def test_a_bearer_token_needs_no_csrf_header(browser: TestClient, database_url: str) -> None:
    token = token_for(browser, "ada")
    response = browser.post("/v1/agents", json={"key": "bob", "name": "Bob"},
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201


def test_refresh_renews_the_session_and_logout_ends_it(browser: TestClient) -> None:
    csrf = log_in(browser, "sam")
    assert browser.post(f"{SESSION}/refresh").status_code == 403  # no CSRF header
    renewed = browser.post(f"{SESSION}/refresh", headers={CSRF_HEADER: csrf})
    assert renewed.status_code == 200
    assert renewed.json()["csrf_token"] != csrf
    assert browser.get("/v1/live").status_code == 200
    assert browser.delete(SESSION).status_code == 204
    assert not browser.cookies
    assert browser.get("/v1/live").status_code == 401


def test_logout_revokes_the_refresh_token_a_copied_cookie_would_renew(
        browser: TestClient, database_url: str) -> None:
    """Clearing the cookies alone left the refresh token valid for its whole life:
    a copy of the cookie (another tab, a stolen jar) went on renewing the session."""
    csrf = log_in(browser, "sam")
    copied = browser.cookies.get(REFRESH_COOKIE, path=SESSION)
    assert copied
    assert browser.delete(SESSION).status_code == 204
    browser.cookies.set(REFRESH_COOKIE, copied, path=SESSION)
    browser.cookies.set(CSRF_COOKIE, csrf)
    assert browser.post(f"{SESSION}/refresh", headers={CSRF_HEADER: csrf}).status_code == 401
    with psycopg.connect(database_url) as conn:
        actions = [row[0] for row in conn.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id")]
    assert actions[-2:] == ["auth.logout", "auth.refresh"]


def test_the_pages_and_their_assets_are_served_without_a_credential(
        browser: TestClient) -> None:
    home = browser.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/wallboard")
    for page in ("/login", "/wallboard"):
        response = browser.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/ui/[^"]+)"', response.text):
            assert browser.get(asset).status_code == 200, asset
        assert "http" not in re.sub(r'xmlns="[^"]+"', "", response.text)  # nothing remote
    assert browser.get("/ui/wallboard.html").status_code == 404  # assets are a fixed list
    assert browser.get("/ui/..%2Fpages%2F__init__.py").status_code == 404


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_their_scripts_from_the_app(browser: TestClient, page: str) -> None:
    response = browser.get(page)
    assert response.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', response.text)
    assert scripts
    for script in scripts:
        assert script.startswith("/"), script  # this origin, not a CDN
        loaded = browser.get(script)
        assert loaded.status_code == 200, script
        assert len(loaded.content) > 100_000, script  # the real bundle, not an error page
