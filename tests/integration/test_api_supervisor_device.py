"""Monitor, whisper and barge ring only the supervisor's own device, provisioned by
an admin: a supervision request cannot name a URI, and a caller with no device
is refused. (The real ringing is in tests/e2e/test_callcentre_supervision.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from application.identity.model import Role
from tests.integration.api_support import (
    api_key,
    assert_problem,
    cdr_row,
    insert_cdrs,
    platform_api,
)
from tests.integration.auth_support import add_user, bearer, token_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

# A call of the tenant that has ended: visible (an invisible one is 404 before any
# device check), so the device check answers first, then "it has ended".
ENDED_CALL = "00000000-0000-4000-8000-0000000000ab"
SUPERVISE = f"/v1/calls/{ENDED_CALL}/supervision"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with platform_api(database_url) as client:
        insert_cdrs(database_url, [cdr_row(datetime.now(UTC), call_id=UUID(ENDED_CALL))])
        yield client


def test_a_supervisor_without_a_device_is_refused_until_an_admin_sets_one(client, database_url):
    add_user(database_url, "sam", Role.SUPERVISOR)
    sam = bearer(token_for(client, "sam"))
    refused = assert_problem(client.post(SUPERVISE, json={"mode": "monitor"}, headers=sam), 409)
    assert "device" in refused["detail"]

    admin = bearer(api_key(database_url, Role.ADMIN))
    device = "sip:sam@127.0.0.1:5099"
    assert client.put("/v1/auth/users/sam/device", json={"device": device},
                      headers=admin).status_code == 204
    listed = client.get("/v1/auth/users", headers=admin).json()["data"]
    assert [(u["username"], u["device"]) for u in listed] == [("sam", device)]
    # Past the device check now: the call has ended.
    ended = assert_problem(client.post(SUPERVISE, json={"mode": "monitor"}, headers=sam), 409)
    assert "ended" in ended["detail"]
    # Cleared again: refused again.
    assert client.put("/v1/auth/users/sam/device", json={"device": None},
                      headers=admin).status_code == 204
    assert_problem(client.post(SUPERVISE, json={"mode": "barge"}, headers=sam), 409)


def test_a_request_cannot_name_the_device_or_the_supervisor(client, database_url):
    add_user(database_url, "sam", Role.SUPERVISOR)
    sam = bearer(token_for(client, "sam"))
    for extra in ({"device": "sip:attacker@198.51.100.7"}, {"supervisor": "someone"}):
        assert_problem(client.post(SUPERVISE, json={"mode": "monitor", **extra}, headers=sam),
                       422)


def test_a_key_has_no_device_and_devices_are_set_by_the_users_admin_only(client, database_url):
    supervisor_key = bearer(api_key(database_url, Role.SUPERVISOR))
    assert_problem(client.post(SUPERVISE, json={"mode": "whisper"}, headers=supervisor_key), 409)

    add_user(database_url, "sam", Role.SUPERVISOR)
    body = {"device": "sip:sam@127.0.0.1"}
    assert_problem(client.put("/v1/auth/users/sam/device", json=body,
                              headers=supervisor_key), 403)
    other_admin = bearer(api_key(database_url, Role.ADMIN, tenant="acme"))
    assert_problem(client.put("/v1/auth/users/sam/device", json=body, headers=other_admin), 404)
    admin = bearer(api_key(database_url, Role.ADMIN))
    assert_problem(client.put("/v1/auth/users/sam/device", json={"device": "tel:+3225550100"},
                              headers=admin), 422)
    assert_problem(client.put("/v1/auth/users/nobody/device", json=body, headers=admin), 404)
    made = client.post("/v1/auth/users", headers=admin, json={
        "username": "sue", "role": "supervisor", "password": "a long enough password",
        "device": "sip:sue@127.0.0.1"})
    assert made.status_code == 201, made.text
    assert made.json()["device"] == "sip:sue@127.0.0.1"
