"""Two tenants through the API (real PostgreSQL): tenant acme's admin provisions an
agent, a queue, an IVR menu, a number and a dialplan and has a call; tenant
globex's admin and supervisor get 404 (never 403) on every operation of the
OpenAPI document that takes an id, for each of acme's ids; lists show each
tenant only its own rows; the same keys are free for the other tenant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from application.identity.model import Role
from tests.integration.api_support import (
    api_key,
    assert_problem,
    cdr_row,
    insert_cdrs,
    insert_events,
    insert_live,
    live_row,
)
from tests.integration.callcentre_api_support import Api, open_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

NOW = datetime.now(UTC).replace(microsecond=0)
DID = "+15550001"
ACME_CALL, ACME_CDR = uuid4(), uuid4()
# What fills each path parameter: acme's things (as another tenant would guess them).
PARAMS = {"agent": "alice", "skill": "english", "digit": "1", "rule": "local", "did": DID,
          "supervisor": "sue", "call_id": str(ACME_CALL)}
KEYS = {"agents": "alice", "queues": "sales", "ivr-menus": "main", "dialplans": "out"}
# A valid body for each operation that takes one (validation must not answer first).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/agents/{key}"): {"skills": {"english": 10}},
    ("PUT", "/v1/agents/{key}/skills/{skill}"): {"level": 10},
    ("POST", "/v1/agents/{key}/login"): {"device_uri": "sip:x@127.0.0.1"},
    ("POST", "/v1/agents/{key}/pause"): {"reason": "lunch"},
    ("PATCH", "/v1/queues/{key}"): {"wrap_up_s": 5},
    ("PUT", "/v1/queues/{key}/members/{agent}"): {"penalty": 1},
    ("PATCH", "/v1/ivr-menus/{key}"): {"prompt": "hello"},
    ("PUT", "/v1/ivr-menus/{key}/options/{digit}"): {"kind": "hangup"},
    ("PATCH", "/v1/numbers/{did}"): {"label": "mine now"},
    ("PUT", "/v1/dialplans/{key}/rules/{rule}"): {"kind": "exact", "pattern": "1",
                                                  "uri_template": "sip:1@pbx"},
    ("POST", "/v1/calls/{call_id}/supervision"): {"mode": "monitor"},
    ("POST", "/v1/calls/{call_id}/transfer"): {"target": {"kind": "number", "value": "100"}},
    ("PATCH", "/v1/webhooks/{webhook_id}"): {"event_types": ["*"]},
    ("POST", "/v1/webhooks/{webhook_id}/redeliver"): {"from_position": 0},
}
QUERIES = {("GET", "/v1/dialplans/{key}/resolve"): {"number": "1"},
           # time travel: any past instant (another tenant's key is 404 at every t)
           ("GET", "/v1/agents/{key}/at"): {"t": "2025-01-01T00:00:00Z"},
           ("GET", "/v1/queues/{key}/at"): {"t": "2025-01-01T00:00:00Z"}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with open_api(database_url) as opened:
        yield opened


@pytest.fixture
def acme(api: Api, database_url: str) -> dict[str, str]:
    """acme's admin key, after it provisioned one of everything and had two calls."""
    admin = bearer(api_key(database_url, Role.ADMIN, tenant="acme"))
    api.ok("POST", "/v1/agents", 201, headers=admin,
           json={"key": "alice", "name": "Alice", "skills": {"english": 50}})
    api.ok("POST", "/v1/queues", 201, headers=admin, json={"key": "sales", "name": "Sales"})
    api.ok("PUT", "/v1/queues/sales/members/alice", headers=admin, json={"penalty": 0})
    api.ok("POST", "/v1/ivr-menus", 201, headers=admin, json={
        "key": "main", "name": "Main", "prompt": "welcome",
        "options": {"1": {"kind": "queue", "value": "sales"}}})
    api.ok("POST", "/v1/numbers", 201, headers=admin,
           json={"did": DID, "destination": {"kind": "queue", "value": "sales"}})
    api.ok("POST", "/v1/dialplans", 201, headers=admin, json={
        "key": "out", "name": "Out",
        "rules": [{"name": "local", "kind": "exact", "pattern": "1", "uri_template": "sip:1@pbx"}]})
    api.project()
    insert_live(database_url, [live_row(NOW, call_id=ACME_CALL, tenant="acme")])
    insert_events(database_url, ACME_CALL, ["initiated", "routed"], NOW)
    _retag_events(database_url)
    insert_cdrs(database_url, [cdr_row(NOW - timedelta(minutes=5), call_id=ACME_CDR,
                                       tenant="acme")])
    webhook = api.ok("POST", "/v1/webhooks", 201, headers=admin, json={
        "url": "https://hooks.example.com/acme", "event_types": ["*"]})
    PARAMS["webhook_id"] = webhook["id"]
    return {"admin": admin["Authorization"]}


def _retag_events(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE call_events SET tenant = 'acme' WHERE call_id = %s", (ACME_CALL,))


def _operations(api: Api) -> list[tuple[str, str]]:
    paths = api.client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() if "{" in path
            for method in ops if not path.startswith("/v1/auth")]


def _url(template: str) -> str:
    collection = template.split("/")[2]

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return KEYS[collection] if name == "key" else PARAMS[name]
    return re.sub(r"\{(\w+)\}", fill, template)


def test_another_tenants_ids_are_404_on_every_operation_that_takes_one(
        api: Api, database_url: str, acme: dict[str, str]) -> None:
    operations = _operations(api)
    assert len(operations) >= 30  # the walk found the call-centre routes
    callers = {role: bearer(api_key(database_url, role, tenant="globex"))
               for role in (Role.ADMIN, Role.SUPERVISOR)}
    allowed = 0
    for method, template in operations:
        for role, headers in callers.items():
            response = api.client.request(
                method, _url(template), headers=headers, json=BODIES.get((method, template)),
                params=QUERIES.get((method, template)))
            if response.status_code == 403:  # the role lacks the permission: nothing to leak
                continue
            allowed += 1
            assert response.status_code == 404, (role.value, method, template, response.text)
            assert_problem(response, 404)
    assert allowed >= len(operations)  # every operation was tried by a role allowed to
    # acme still has everything, untouched.
    admin = {"Authorization": acme["admin"]}
    assert api.ok("GET", "/v1/agents/alice", headers=admin)["skills"] == {"english": 50}
    assert api.ok("GET", f"/v1/numbers/{DID}", headers=admin)["label"] == ""
    assert api.ok("GET", f"/v1/calls/{ACME_CALL}", headers=admin)["status"] == "answered"


def test_lists_show_only_the_callers_tenant(api: Api, database_url: str,
                                            acme: dict[str, str]) -> None:
    globex = bearer(api_key(database_url, Role.ADMIN, tenant="globex"))
    for path in ("/v1/agents", "/v1/queues", "/v1/ivr-menus", "/v1/numbers", "/v1/dialplans",
                 "/v1/calls", "/v1/skills"):
        assert api.ok("GET", path, headers=globex)["count"] == 0, path
    window = {"from": (NOW - timedelta(hours=1)).isoformat(), "to": NOW.isoformat()}
    assert api.ok("GET", "/v1/cdrs", headers=globex, params=window)["count"] == 0
    admin = {"Authorization": acme["admin"]}
    for path in ("/v1/agents", "/v1/queues", "/v1/ivr-menus", "/v1/numbers", "/v1/dialplans",
                 "/v1/calls"):
        assert api.ok("GET", path, headers=admin)["count"] == 1, path
    [cdr] = api.ok("GET", "/v1/cdrs", headers=admin, params=window)["data"]
    assert (cdr["call_id"], cdr["tenant"]) == (str(ACME_CDR), "acme")


def test_the_same_keys_are_free_in_another_tenant(api: Api, database_url: str,
                                                  acme: dict[str, str]) -> None:
    globex = bearer(api_key(database_url, Role.ADMIN, tenant="globex"))
    agent = api.ok("POST", "/v1/agents", 201, headers=globex, json={"key": "alice", "name": "A"})
    api.ok("POST", "/v1/queues", 201, headers=globex, json={"key": "sales", "name": "S"})
    api.project()
    assert agent["id"] != api.ok("GET", "/v1/agents/alice",
                                 headers={"Authorization": acme["admin"]})["id"]
    # A DID reaches one tenant: taken is taken (the same 409 as for one's own).
    assert_problem(api.client.post("/v1/numbers", headers=globex, json={
        "did": DID, "destination": {"kind": "queue", "value": "sales"}}), 409)
    # A target of another tenant's queue, by id, does not exist for this one.
    acme_sales = api.ok("GET", "/v1/queues/sales", headers={"Authorization": acme["admin"]})
    assert_problem(api.client.post("/v1/numbers", headers=globex, json={
        "did": "+15550002", "destination": {"kind": "queue", "value": acme_sales["id"]}}), 422)
