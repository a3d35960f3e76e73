"""Devices' SIP credentials through the API (real PostgreSQL, issue 14 §1): an admin
sets the tenant's SIP domain and provisions devices; only the digest hashes are
stored (the ones Kamailio's auth_db compares), the password is never stored,
returned or audited; other roles are refused; other tenants see nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth.sip_routes import router as sip_router
from application.identity import sip_credentials
from application.identity.model import Role
from application.identity.sip_credentials import digest_hashes
from dialtone.commands.users import with_connection
from tests.integration.api_support import api_key, running_api
from tests.integration.callcentre_api_support import alice, open_api

PASSWORD = "desk-101 secret pw"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with running_api(database_url, extra_routers=(sip_router,), role=None) as served:
        yield served


def headers(database_url: str, role: Role = Role.ADMIN, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(database_url, role, tenant)}"}


def test_the_digest_hashes_are_rfc_2617s_ha1() -> None:
    ha1, ha1b = digest_hashes("desk-101", "acme.test", "pw")
    assert ha1 == hashlib.md5(b"desk-101:acme.test:pw").hexdigest()
    assert ha1b == hashlib.md5(b"desk-101@acme.test:acme.test:pw").hexdigest()


def test_an_admin_provisions_a_device_and_only_its_hashes_are_kept(
        client: TestClient, database_url: str) -> None:
    admin = headers(database_url)
    assert client.get("/v1/auth/sip/domain", headers=admin).status_code == 404
    refused = client.post("/v1/auth/sip/credentials", headers=admin,
                          json={"username": "desk-101", "password": PASSWORD})
    assert refused.status_code == 409, refused.text  # no domain yet

    assert client.put("/v1/auth/sip/domain", headers=admin,
                      json={"domain": "Acme.Test"}).status_code == 204
    assert client.get("/v1/auth/sip/domain", headers=admin).json() == {"domain": "acme.test"}
    made = client.post("/v1/auth/sip/credentials", headers=admin,
                       json={"username": "desk-101", "password": PASSWORD})

    assert made.status_code == 201, made.text
    assert made.json() == {"username": "desk-101", "domain": "acme.test",
                           "aor": "sip:desk-101@acme.test"}
    listed = client.get("/v1/auth/sip/credentials", headers=admin)
    assert listed.json() == {"data": [made.json()], "count": 1}
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT tenant, username, domain, ha1, ha1b FROM sip_subscribers"
                           ).fetchone()
        audit = conn.execute("SELECT detail::text FROM audit_log").fetchall()
        dump = conn.execute("SELECT row_to_json(s)::text FROM sip_subscribers s").fetchone()
    assert row == ("acme", "desk-101", "acme.test",
                   *digest_hashes("desk-101", "acme.test", PASSWORD))
    assert dump is not None
    assert PASSWORD not in dump[0]
    assert audit
    assert all(PASSWORD not in detail for (detail,) in audit)
    for body in (made.text, listed.text):
        assert PASSWORD not in body
        assert row[3] not in body
        assert row[4] not in body

    again = client.post("/v1/auth/sip/credentials", headers=admin,
                        json={"username": "desk-101", "password": PASSWORD})
    assert again.status_code == 409, again.text
    assert client.delete("/v1/auth/sip/credentials/desk-101", headers=admin).status_code == 204
    assert client.get("/v1/auth/sip/credentials", headers=admin).json()["count"] == 0
    assert client.delete("/v1/auth/sip/credentials/desk-101", headers=admin).status_code == 404


def test_other_roles_are_refused_and_other_tenants_see_nothing(
        client: TestClient, database_url: str) -> None:
    admin = headers(database_url)
    client.put("/v1/auth/sip/domain", headers=admin, json={"domain": "acme.test"})
    client.post("/v1/auth/sip/credentials", headers=admin,
                json={"username": "desk-101", "password": PASSWORD})
    for role in (Role.SUPERVISOR, Role.AGENT, Role.ANALYST, Role.INTEGRATOR):
        other = headers(database_url, role)
        assert client.get("/v1/auth/sip/credentials", headers=other).status_code == 403
        assert client.post("/v1/auth/sip/credentials", headers=other, json={
            "username": "desk-102", "password": PASSWORD}).status_code == 403
    assert client.get("/v1/auth/sip/credentials").status_code == 401

    globex = headers(database_url, tenant="globex")
    assert client.get("/v1/auth/sip/credentials", headers=globex).json()["count"] == 0
    assert client.delete("/v1/auth/sip/credentials/desk-101",
                         headers=globex).status_code == 404
    taken = client.put("/v1/auth/sip/domain", headers=globex, json={"domain": "acme.test"})
    assert taken.status_code == 409, taken.text
    assert client.get("/v1/auth/sip/credentials", headers=admin).json()["count"] == 1


def test_an_agent_logs_in_by_extension_on_the_devices_address_of_record(
        database_url: str) -> None:
    with open_api(database_url) as api:  # role admin of tenant default
        with_connection(database_url, _provision_default)
        alice(api)

        unknown = api.problem("POST", "/v1/agents/alice/login", 422,
                              json={"extension": "desk-999"})
        both = api.client.post("/v1/agents/alice/login",
                               json={"extension": "desk-101", "device_uri": "sip:x@y"})
        logged_in = api.ok("POST", "/v1/agents/alice/login", json={"extension": "desk-101"})

    assert "desk-999" in str(unknown)
    assert both.status_code == 422, both.text
    assert logged_in["state"] == "available"
    assert logged_in["device_uri"] == "sip:desk-101@default.test"


async def _provision_default(conn: Any) -> None:
    await sip_credentials.set_sip_domain(conn, "default", "default.test")
    await sip_credentials.create_credential(conn, "default", "desk-101", PASSWORD)
