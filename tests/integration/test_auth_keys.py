"""API keys and users through the admin routes: shown once, stored hashed,
revocable, expiring, and every admin acts only inside its own tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from application.identity.model import Role
from tests.integration.auth_support import add_user, auth_api, bearer, login, token_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


def _admin_headers(client: TestClient, username: str = "ada") -> dict[str, str]:
    return bearer(token_for(client, username))


def test_a_key_is_shown_once_stored_hashed_and_opens_what_its_role_allows(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        admin = _admin_headers(client)
        crm = client.post("/v1/auth/keys", json={"account": "crm"}, headers=admin)
        assert crm.status_code == 201, crm.text
        ops = client.post("/v1/auth/keys", json={"account": "ops", "role": "admin"},
                          headers=admin).json()
        key = crm.json()
        assert key["key"].startswith(f"dtk_{key['key_id']}_")
        assert key["role"] == "integrator"
        # An integrator key authenticates but may not manage keys; an admin key may.
        assert client.get("/v1/auth/keys", headers=bearer(key["key"])).status_code == 403
        listed = client.get("/v1/auth/keys", headers=bearer(ops["key"]))
        assert listed.status_code == 200
        assert {k["account"] for k in listed.json()["data"]} == {"crm", "ops"}
        assert key["key"] not in listed.text
        secret = key["key"].split("_", 2)[2]
        assert secret not in listed.text
    with psycopg.connect(database_url) as conn:
        dump = str(conn.execute("SELECT * FROM api_keys").fetchall())
    assert secret not in dump


def test_a_revoked_key_stops_working(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        admin = _admin_headers(client)
        key = client.post("/v1/auth/keys", json={"account": "ops", "role": "admin"},
                          headers=admin).json()
        assert client.get("/v1/auth/keys", headers=bearer(key["key"])).status_code == 200
        revoked = client.delete(f"/v1/auth/keys/{key['key_id']}", headers=admin)
        assert revoked.status_code == 204
        assert client.get("/v1/auth/keys", headers=bearer(key["key"])).status_code == 401
        listed = client.get("/v1/auth/keys", headers=admin).json()["data"]
        assert [k["revoked"] for k in listed] == [True]


def test_an_expired_key_is_refused_and_a_wrong_secret_too(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    with auth_api(database_url) as client:
        admin = _admin_headers(client)
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        expired = client.post("/v1/auth/keys", json={"account": "old", "role": "admin",
                                                      "expires_at": past}, headers=admin).json()
        assert client.get("/v1/auth/keys", headers=bearer(expired["key"])).status_code == 401
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        live = client.post("/v1/auth/keys", json={"account": "new", "role": "admin",
                                                  "expires_at": future}, headers=admin).json()
        assert client.get("/v1/auth/keys", headers=bearer(live["key"])).status_code == 200
        forged = f"dtk_{live['key_id']}_{'A' * 43}"
        assert client.get("/v1/auth/keys", headers=bearer(forged)).status_code == 401


def test_admins_see_and_touch_only_their_own_tenant(database_url):
    add_user(database_url, "ada", Role.ADMIN)
    add_user(database_url, "bob", Role.ADMIN, tenant="acme")
    add_user(database_url, "carl", Role.AGENT, tenant="acme")
    with auth_api(database_url) as client:
        ada, bob = _admin_headers(client, "ada"), _admin_headers(client, "bob")
        key = client.post("/v1/auth/keys", json={"account": "crm"}, headers=ada).json()
        assert client.get("/v1/auth/keys", headers=bob).json()["count"] == 0
        assert client.delete(f"/v1/auth/keys/{key['key_id']}", headers=bob).status_code == 404
        users = client.get("/v1/auth/users", headers=bob).json()["data"]
        assert {u["username"] for u in users} == {"bob", "carl"}
        assert client.post("/v1/auth/users/ada/disable", headers=bob).status_code == 404
        assert login(client, "ada").status_code == 200


def test_disabling_a_name_of_another_tenant_leaves_that_users_sessions_alone(database_url):
    """Usernames are unique across tenants: the 404 once still revoked the refresh
    tokens of the other tenant's user of that name."""
    add_user(database_url, "ada", Role.ADMIN)
    add_user(database_url, "bob", Role.ADMIN, tenant="acme")
    with auth_api(database_url) as client:
        refresh_token = login(client, "ada").json()["refresh_token"]
        bob = _admin_headers(client, "bob")
        assert client.post("/v1/auth/users/ada/disable", headers=bob).status_code == 404
        renewed = client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert renewed.status_code == 200, renewed.text


def test_an_admin_adds_and_disables_a_user_of_its_tenant(database_url):
    add_user(database_url, "bob", Role.ADMIN, tenant="acme")
    with auth_api(database_url, state_ttl_s=60) as client:
        bob = _admin_headers(client, "bob")
        added = client.post("/v1/auth/users", json={"username": "sue", "role": "supervisor",
                                                    "password": "another long password"},
                            headers=bob)
        assert added.status_code == 201, added.text
        assert added.json()["tenant"] == "acme"
        assert "password" not in added.text
        taken = client.post("/v1/auth/users", json={"username": "sue", "role": "agent",
                                                    "password": "another long password"},
                            headers=bob)
        assert taken.status_code == 409
        sue = bearer(token_for(client, "sue", "another long password"))
        assert client.get("/v1/auth/users", headers=sue).status_code == 403
        assert client.post("/v1/auth/users/sue/disable", headers=bob).status_code == 204
        # Refused at once on this process although its cache would keep sue for 60 s.
        assert client.get("/v1/auth/users", headers=sue).status_code == 401
    with psycopg.connect(database_url) as conn:
        actions = conn.execute("SELECT action, actor_kind, tenant FROM audit_log "
                               "WHERE action LIKE 'users.%' ORDER BY id").fetchall()
    assert actions == [("users.add", "user", "acme"), ("users.disable", "user", "acme")]
