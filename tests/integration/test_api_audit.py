"""Every command is in the audit log with its actor, tenant, aggregate, outcome and
request id; `GET /v1/audit` serves it to the tenant's admins only, filtered and paged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from application.identity.credentials import API_KEY_PREFIX, parse_secret
from application.identity.model import Role
from domain.agent import Agent
from tests.integration.api_support import api_key, assert_problem, platform_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


def key_id(key: str) -> str:
    parsed = parse_secret(key, API_KEY_PREFIX)
    assert parsed is not None
    return parsed.id


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with platform_api(database_url) as client:
        yield client


def audit(client: TestClient, key: str, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/audit", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_command_is_recorded_with_its_actor_aggregate_and_request_id(client, database_url):
    admin = api_key(database_url, Role.ADMIN)
    supervisor = api_key(database_url, Role.SUPERVISOR)
    created = client.post("/v1/agents", json={"key": "alice", "name": "Alice"},
                          headers=bearer(admin, **{"X-Request-ID": "req-create-1"}))
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "req-create-1"
    # A refused command is recorded too, with the status it got; a request id that is
    # not a sane token is replaced by a new one, echoed back.
    refused = client.post("/v1/agents/alice/pause", json={"reason": "lunch"},
                          headers=bearer(supervisor, **{"X-Request-ID": "no spaces allowed"}))
    assert refused.status_code == 409, refused.text
    new_id = refused.headers["x-request-id"]
    assert new_id != "no spaces allowed"
    assert len(new_id) == 32

    entries = audit(client, admin)["data"]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("agents.pause", "refused"), ("agents.create", "ok")]
    pause, create = entries
    assert create["actor"] == key_id(admin)
    assert create["actor_kind"] == "key"
    assert create["aggregate_id"] == str(Agent.id_for("alice"))
    assert create["request_id"] == "req-create-1"
    assert create["detail"]["status"] == 200
    assert pause["actor"] == key_id(supervisor)
    assert pause["request_id"] == new_id
    assert pause["detail"] == {"status": 409, "method": "POST", "key": "alice"}


def test_webhook_commands_name_their_subscription(client, database_url, monkeypatch):
    """They were recorded with no aggregate: `?aggregate=<webhook id>` found nothing."""
    monkeypatch.setenv("DIALTONE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32")
    admin = api_key(database_url, Role.ADMIN)
    created = client.post("/v1/webhooks", headers=bearer(admin), json={
        "url": "http://127.0.0.1:9/hooks", "event_types": ["*"]})
    assert created.status_code == 201, created.text
    webhook = created.json()["id"]
    assert client.post(f"/v1/webhooks/{webhook}/pause", headers=bearer(admin)).is_success
    entries = audit(client, admin, aggregate=webhook)["data"]
    assert [e["action"] for e in entries] == ["webhooks.pause", "webhooks.create"]


def test_supervision_and_transfers_are_recorded_even_when_refused(client, database_url):
    supervisor = api_key(database_url, Role.SUPERVISOR)
    call_id = "00000000-0000-4000-8000-0000000000aa"
    client.post(f"/v1/calls/{call_id}/supervision", json={"mode": "barge"},
                headers=bearer(supervisor))
    client.post(f"/v1/calls/{call_id}/transfer/complete", headers=bearer(supervisor))
    admin = api_key(database_url, Role.ADMIN)
    entries = audit(client, admin, aggregate=call_id)["data"]
    assert [e["action"] for e in entries] == ["transfers.complete", "supervision.start"]
    assert {e["actor"] for e in entries} == {key_id(supervisor)}
    assert all(e["outcome"] == "refused" for e in entries)


def test_audit_is_filtered_paged_and_kept_to_the_callers_tenant(client, database_url):
    admin = api_key(database_url, Role.ADMIN)
    other_admin = api_key(database_url, Role.ADMIN, tenant="acme")
    for key in ("a", "b", "c", "d", "e"):
        assert client.post("/v1/agents", json={"key": key, "name": key.upper()},
                           headers=bearer(admin)).status_code == 201
    client.post("/v1/agents", json={"key": "f", "name": "F"}, headers=bearer(other_admin))

    seen: list[str] = []
    url: str | None = f"/v1/audit?limit=2&actor={key_id(admin)}"
    for _ in range(10):  # bounded: 5 entries in pages of 2, followed by their Link header
        assert url is not None
        page = client.get(url, headers=bearer(admin))
        body = page.json()
        seen += [e["aggregate_id"] for e in body["data"]]
        assert ("link" in page.headers) == (body["next_cursor"] is not None)
        if body["next_cursor"] is None:
            break
        url = page.links["next"]["url"]
        assert f"cursor={body['next_cursor']}" in url
    assert seen == [str(Agent.id_for(k)) for k in ("e", "d", "c", "b", "a")]

    # The other tenant's admin sees only its own entry; the ids of this tenant
    # are not visible to it, even asked for by name.
    assert [e["aggregate_id"] for e in audit(client, other_admin)["data"]] == [
        str(Agent.id_for("f", "acme"))]
    assert audit(client, other_admin, actor=key_id(admin))["data"] == []
    assert audit(client, admin, aggregate=str(Agent.id_for("c")))["count"] == 1
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit(client, admin, **{"from": later, "to": later})["data"] == []
    assert_problem(client.get("/v1/audit", params={"cursor": "nonsense"},
                              headers=bearer(admin)), 422)


def test_only_admins_read_the_audit(client, database_url):
    for role in (Role.SUPERVISOR, Role.ANALYST, Role.INTEGRATOR, Role.AGENT):
        response = client.get("/v1/audit", headers=bearer(api_key(database_url, role)))
        assert_problem(response, 403)
    assert_problem(client.get("/v1/audit"), 401)
