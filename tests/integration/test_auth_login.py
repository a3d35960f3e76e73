"""Logging in, using and refreshing tokens, and every refused credential, on the
real API over a real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx2
import jwt
import psycopg
import pytest

from application.identity import store
from application.identity.model import Role
from dialtone.commands.users import with_connection
from tests.integration.api_support import PROBLEM
from tests.integration.auth_support import (
    PASSWORD,
    add_user,
    auth_api,
    bearer,
    login,
    token_for,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


def _signing_key(database_url: str) -> bytes:
    return with_connection(database_url, store.signing_key)


def _scalar(database_url: str, query: str) -> object:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    body.pop("instance", None)
    return body


def _unauthorized(response: httpx2.Response) -> dict[str, Any]:
    assert response.headers.get("www-authenticate") == "Bearer"
    return _problem(response, 401)


def test_a_user_logs_in_and_the_token_opens_what_the_role_allows(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        answer = login(client, "ada")
        assert answer.status_code == 200, answer.text
        tokens = answer.json()
        assert tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == 900
        assert tokens["refresh_token"].startswith("dtr_")
        users = client.get("/v1/auth/users", headers=bearer(tokens["access_token"]))
        assert users.status_code == 200, users.text
        assert [u["username"] for u in users.json()["data"]] == ["ada"]
        assert "password" not in users.text


def test_wrong_password_and_unknown_user_get_the_same_401(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        wrong = _unauthorized(login(client, "ada", "not the password"))
        unknown = _unauthorized(login(client, "nobody", "not the password"))
        assert wrong == unknown
        assert wrong["type"] == "urn:dialtone:problem:unauthenticated"


def test_a_disabled_user_cannot_log_in(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with_connection(database_url, lambda c: store.set_user_disabled(c, "ada", None, True))
    with auth_api(database_url) as client:
        disabled = _unauthorized(login(client, "ada"))
        assert disabled == _unauthorized(login(client, "nobody"))


def test_missing_or_bad_credentials_get_401_and_the_same_body(database_url):
    user = add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        token_for(client, "ada")  # makes the signing key
        key = _signing_key(database_url)
        now = int(time.time())
        claims = {"sub": str(user.id), "tenant": "default", "role": "admin", "jti": "j",
                  "iat": now - 1000, "exp": now - 100, "iss": "dialtone", "aud": "dialtone-api"}
        expired = jwt.encode(claims, key, algorithm="HS256")
        live = {**claims, "exp": now + 100}
        wrong_issuer = jwt.encode({**live, "iss": "elsewhere"}, key, algorithm="HS256")
        foreign_key = jwt.encode(live, b"z" * 32, algorithm="HS256")
        other_tenant = jwt.encode({**live, "tenant": "acme"}, key, algorithm="HS256")
        good = jwt.encode(live, key, algorithm="HS256")
        assert client.get("/v1/auth/users", headers=bearer(good)).status_code == 200
        answers = [
            client.get("/v1/auth/users"),
            client.get("/v1/auth/users", headers={"Authorization": "Basic YWRhOng="}),
            client.get("/v1/auth/users", headers=bearer("garbage")),
            client.get("/v1/auth/users", headers=bearer(expired)),
            client.get("/v1/auth/users", headers=bearer(wrong_issuer)),
            client.get("/v1/auth/users", headers=bearer(foreign_key)),
            client.get("/v1/auth/users", headers=bearer(other_tenant)),
            client.get("/v1/auth/users", headers=bearer(good[:-3] + "AAA")),
            client.get("/v1/auth/users", headers=bearer("dtk_0123_notakey")),
        ]
        bodies = [_unauthorized(a) for a in answers]
        assert all(b == bodies[0] for b in bodies)


def test_a_role_without_the_permission_gets_403(database_url):
    add_user(database_url, "sam", Role.SUPERVISOR)
    with auth_api(database_url) as client:
        answer = client.get("/v1/auth/users", headers=bearer(token_for(client, "sam")))
        body = _problem(answer, 403)
        assert body["type"] == "urn:dialtone:problem:forbidden"
        assert "users:admin" in body["detail"]


def test_a_disabled_user_is_refused_inside_the_token_lifetime(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        answer = login(client, "ada").json()
        token, refresh = answer["access_token"], answer["refresh_token"]
        assert client.get("/v1/auth/users", headers=bearer(token)).status_code == 200
        # Disabled by another process (the CLI): this API's cache is bypassed (ttl 0).
        with_connection(database_url, lambda c: store.set_user_disabled(c, "ada", None, True))
        _unauthorized(client.get("/v1/auth/users", headers=bearer(token)))
        _unauthorized(client.post("/v1/auth/refresh", json={"refresh_token": refresh}))


def test_the_state_cache_keeps_a_disabled_user_only_for_its_ttl(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, state_ttl_s=0.5) as client:
        token = token_for(client, "ada")
        assert client.get("/v1/auth/users", headers=bearer(token)).status_code == 200
        with_connection(database_url, lambda c: store.set_user_disabled(c, "ada", None, True))
        deadline = time.monotonic() + 10
        while client.get("/v1/auth/users", headers=bearer(token)).status_code == 200:
            assert time.monotonic() < deadline, "still accepted well after the cache ttl"
            time.sleep(0.1)
        _unauthorized(client.get("/v1/auth/users", headers=bearer(token)))


def test_refresh_tokens_rotate_and_a_replay_revokes_the_family(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        first = login(client, "ada").json()["refresh_token"]
        second = client.post("/v1/auth/refresh", json={"refresh_token": first})
        assert second.status_code == 200, second.text
        renewed = second.json()
        assert renewed["refresh_token"] != first
        assert client.get("/v1/auth/users", headers=bearer(renewed["access_token"])).is_success
        # The first token again: refused, and the token it was traded for dies with it.
        _unauthorized(client.post("/v1/auth/refresh", json={"refresh_token": first}))
        _unauthorized(client.post("/v1/auth/refresh",
                                  json={"refresh_token": renewed["refresh_token"]}))
        _unauthorized(client.post("/v1/auth/refresh", json={"refresh_token": "dtr_x_y"}))
        # A fresh login starts a new family.
        fresh = login(client, "ada").json()["refresh_token"]
        assert client.post("/v1/auth/refresh", json={"refresh_token": fresh}).is_success


def test_repeated_failures_lock_the_username_across_api_processes(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    settings = {"lockout_failures": 3, "lockout_window_s": 300, "lockout_s": 2}
    with auth_api(database_url, **settings) as one, auth_api(database_url, **settings) as two:
        _unauthorized(login(one, "ada", "wrong 1"))
        _unauthorized(login(two, "ada", "wrong 2"))
        _unauthorized(login(one, "ada", "wrong 3"))
        locked = login(two, "ada")  # the right password, on the other process
        body = _problem(locked, 429)
        assert body["type"] == "urn:dialtone:problem:too-many-attempts"
        assert 1 <= int(locked.headers["retry-after"]) <= 2
        # An unknown name locks the same way, so a lockout tells nothing about existence.
        for attempt in range(3):
            _unauthorized(login(one, "ghost", f"wrong {attempt}"))
        _problem(login(one, "ghost"), 429)
        deadline = time.monotonic() + 15
        while (answer := login(one, "ada")).status_code == 429:
            assert time.monotonic() < deadline, "the lock did not end"
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text


def test_logins_are_audited_with_actor_outcome_and_request_id(database_url):
    user = add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, lockout_failures=2) as client:
        assert login(client, "ada", **{"X-Request-ID": "req-ok"}).status_code == 200
        _unauthorized(login(client, "ada", "wrong", **{"X-Request-ID": "req-bad"}))
        _unauthorized(login(client, "ghost", "wrong", **{"X-Request-ID": "req-ghost"}))
        _unauthorized(login(client, "ada", "wrong again"))
        _problem(login(client, "ada"), 429)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, actor_kind, tenant, action, outcome, request_id, "
                            "detail FROM audit_log ORDER BY id").fetchall()
    assert [r[3:5] for r in rows] == [("auth.login", "ok"), ("auth.login", "denied"),
                                      ("auth.login", "denied"), ("auth.login", "denied"),
                                      ("auth.login", "locked")]
    assert rows[0][:3] == (str(user.id), "user", "default")
    assert rows[0][5] == "req-ok"
    assert rows[1][5] == "req-bad"
    assert rows[2][:3] == (None, "anonymous", None)
    assert rows[2][6] == {"username": "ghost"}
    assert all(len(r[5]) > 0 for r in rows)
    assert "wrong" not in str(rows)
    assert PASSWORD not in str(rows)


def test_no_password_token_or_hash_reaches_a_log_line(database_url, caplog):
    caplog.set_level("DEBUG")
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        tokens = login(client, "ada").json()
        _unauthorized(login(client, "ada", "a wrong secret password"))
        client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        created = client.post("/v1/auth/keys", json={"account": "crm"},
                              headers=bearer(tokens["access_token"])).json()
    password_hash = str(_scalar(database_url, "SELECT password_hash FROM users"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (PASSWORD, "a wrong secret password", tokens["access_token"],
                   tokens["refresh_token"], created["key"], password_hash):
        assert secret not in logged


def test_the_signing_key_is_made_once_and_shared_by_every_api_process(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as one, auth_api(database_url) as two:
        token = token_for(one, "ada")
        assert two.get("/v1/auth/users", headers=bearer(token)).status_code == 200
    assert _scalar(database_url, "SELECT count(*) FROM auth_signing_key") == 1


def test_a_signing_key_from_the_environment_replaces_the_stored_one(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, signing_key="s" * 40) as client:
        token = token_for(client, "ada")
        claims = jwt.decode(token, b"s" * 40, algorithms=["HS256"], audience="dialtone-api")
        assert uuid.UUID(claims["sub"])
    assert _scalar(database_url, "SELECT count(*) FROM auth_signing_key") == 0


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Token abc"])
def test_malformed_authorization_headers_get_401(database_url, header):
    with auth_api(database_url) as client:
        _unauthorized(client.get("/v1/auth/keys", headers={"Authorization": header}))
