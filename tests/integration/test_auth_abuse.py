"""What an attacker sends to the login and refresh routes, on the real API over a real
PostgreSQL: guesses in parallel, forged refresh tokens, a session kept alive by
refreshing, a stolen session after a password change, names no user can have."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from api.auth.session import router as session_router
from application.identity import service
from application.identity.model import Role
from dialtone.commands.users import with_connection
from tests.integration.auth_support import PASSWORD, add_user, auth_api, login

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

REFRESH = "/v1/auth/refresh"


def _audit(database_url: str, action: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT outcome, actor, actor_kind, tenant, detail FROM audit_log "
                            "WHERE action = %s ORDER BY id", (action,)).fetchall()


def test_parallel_guesses_get_no_more_than_the_quota_verified(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, lockout_failures=5, lockout_s=60) as client:
        guesses = [f"wrong guess number {i}" for i in range(40)]
        with ThreadPoolExecutor(len(guesses)) as pool:
            answers = list(pool.map(lambda p: login(client, "ada", p).status_code, guesses))
        # Each guess was counted before argon2 ran: the quota verified, the rest refused.
        assert sorted(answers) == [401] * 5 + [429] * 35
        assert login(client, "ada").status_code == 429  # the right password too, while locked
    outcomes = [row[0] for row in _audit(database_url, "auth.login")]
    assert sorted(outcomes) == ["denied"] * 5 + ["locked"] * 36


def test_the_last_attempt_of_the_quota_may_be_the_right_password(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, lockout_failures=3) as client:
        assert [login(client, "ada", p).status_code for p in ("no 1", "no 2", PASSWORD)] == [
            401, 401, 200]
        # The success cleared the count: a full quota again, then the lock.
        assert [login(client, "ada", p).status_code for p in ("no 3", "no 4", "no 5")] == [
            401, 401, 401]
        assert login(client, "ada").status_code == 429


def test_a_forged_secret_burns_nothing_and_is_audited(database_url):
    user = add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        real = login(client, "ada").json()["refresh_token"]
        _prefix, token_id, _secret = real.split("_", 2)
        for forged in (f"dtr_{token_id}_{'A' * 43}", f"dtr_00_{'B' * 43}", "dtr_x_y"):
            assert client.post(REFRESH, json={"refresh_token": forged}).status_code == 401
        # The owner's token was never marked used: it renews, and its family lives on.
        renewed = client.post(REFRESH, json={"refresh_token": real})
        assert renewed.status_code == 200, renewed.text
        assert client.post(REFRESH, json={"refresh_token": renewed.json()["refresh_token"]}
                           ).status_code == 200
    rows = _audit(database_url, "auth.refresh")
    assert [row[:4] for row in rows] == [("denied", None, "anonymous", None)] * 3 + [
        ("ok", str(user.id), "user", "default")] * 2


def test_a_session_ends_a_refresh_ttl_after_its_login_however_often_it_refreshes(
        database_url):
    user = add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url, refresh_ttl_s=3) as client:
        token = login(client, "ada").json()["refresh_token"]
        logged_in = time.monotonic()
        time.sleep(1)
        first = client.post(REFRESH, json={"refresh_token": token})
        assert first.status_code == 200, first.text
        time.sleep(max(0.0, logged_in + 3.2 - time.monotonic()))
        # A sliding expiry would give this token until 3 s after the first refresh.
        second = client.post(REFRESH, json={"refresh_token": first.json()["refresh_token"]})
        assert second.status_code == 401, second.text
    assert [row[:2] for row in _audit(database_url, "auth.refresh")] == [
        ("ok", str(user.id)), ("denied", str(user.id))]
    with psycopg.connect(database_url) as conn:
        ends = conn.execute("SELECT count(*), count(DISTINCT expires_at) FROM refresh_tokens"
                            ).fetchone()
    assert ends == (2, 1)  # the rotated token kept its family's end


def test_a_new_password_ends_the_sessions_of_the_old_one(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    add_user(database_url, "sam", Role.SUPERVISOR)
    with auth_api(database_url) as client:
        stolen = login(client, "ada").json()["refresh_token"]
        other = login(client, "sam").json()["refresh_token"]
        changed = with_connection(database_url, lambda conn: service.change_password(
            conn, "ada", None, "a brand new long password"))
        assert changed
        assert client.post(REFRESH, json={"refresh_token": stolen}).status_code == 401
        assert client.post(REFRESH, json={"refresh_token": other}).status_code == 200
        assert login(client, "ada", "a brand new long password").status_code == 200


@pytest.mark.parametrize("route", ["/v1/auth/token", "/v1/auth/session"])
def test_a_name_no_user_can_have_is_an_unknown_user(database_url, route):
    huge = secrets.token_hex(4000)  # 8,000 characters no index compresses small enough
    with auth_api(database_url, routers=(session_router,)) as client:
        unknown = client.post(route, data={"username": "nobody", "password": "not it"})
        answers = [client.post(route, data={"username": name, "password": "not it"})
                   for name in (huge, "John Smith", "ada\x00")]
        assert unknown.status_code == 401
        for answer in answers:
            assert answer.status_code == 401, answer.text
            assert answer.json()["detail"] == unknown.json()["detail"]
    rows = _audit(database_url, "auth.login")
    assert [row[:4] for row in rows] == [("denied", None, "anonymous", None)] * 4
    assert [row[4]["username"] for row in rows] == [
        "nobody", huge[:64] + "\u2026", "John Smith", "ada\ufffd"]


def test_a_user_made_before_names_were_checked_still_logs_in(database_url):
    """`dialtone users add` stored names the pattern now refuses (before 8a21fb6);
    an admin must still reach them (api/auth/routes.py), and they must still log in."""
    add_user(database_url, "ada", Role.ADMIN)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE users SET username = 'sam smith' WHERE username = 'ada'")
    with auth_api(database_url) as client:
        assert login(client, "sam smith").status_code == 200
