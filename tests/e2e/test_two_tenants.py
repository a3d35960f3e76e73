"""Two tenants on the wire (issue 9, tenants): each tenant's admin provisions,
through the API, a queue `sales`, an agent `alice` (the same keys in both) and
a number; real SIP calls (sipp callers through one B2BUA worker, softphone
agents in their own processes) reach both tenants' queues and agents; each
tenant's supervisor sees only its own live calls, CDRs and queue figures, the
other tenant's call ids answer 404, and every CDR carries its call's tenant."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from application.callcentre import CallCentreService
from application.identity.model import Role
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import StartPhone, api, centre, phone, router, wait_for
from tests.fixtures.sip import Sipp, StartWorker
from tests.integration.api_support import api_key

pytestmark = pytest.mark.sip
__all__ = ["api", "centre", "phone", "router"]  # fixtures used by name

TENANTS = {"acme": "5001", "globex": "5002"}  # tenant -> its number
TALK_S = "4.0"  # agents hang up after this: long enough to see the calls live


def _headers(database_url: str, role: Role, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(database_url, role, tenant)}"}


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _provision(api: TestClient, admin: dict[str, str], did: str, device: str) -> None:
    _ok(api.post("/v1/agents", headers=admin, json={"key": "alice", "name": "Alice"}), 201)
    _ok(api.post("/v1/queues", headers=admin, json={"key": "sales", "name": "Sales"}), 201)
    _ok(api.put("/v1/queues/sales/members/alice", headers=admin, json={"penalty": 0}))
    _ok(api.post("/v1/numbers", headers=admin, json={
        "did": did, "destination": {"kind": "queue", "value": "sales"}}), 201)
    _ok(api.post("/v1/agents/alice/login", headers=admin, json={"device_uri": device}))


def test_calls_reach_both_tenants_and_each_supervisor_sees_only_its_own(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, sipp: Sipp, database_url: str,
) -> None:
    del router, centre  # running: the routing process and the API's service
    admins = {t: _headers(database_url, Role.ADMIN, t) for t in TENANTS}
    supervisors = {t: _headers(database_url, Role.SUPERVISOR, t) for t in TENANTS}
    agents = {t: phone(f"alice-{t}", "--answer-after", "0.3", "--hangup-after", TALK_S)
              for t in TENANTS}
    for tenant, did in TENANTS.items():
        _provision(api, admins[tenant], did, agents[tenant].uri)
    worker = b2bua(args=["--max-calls", "2"])  # one worker holds both tenants' calls

    callers: list[subprocess.Popen[bytes]] = [
        sipp.uac_background("uac_wait_bye.xml", worker.port, service=did, timeout=30)
        for did in TENANTS.values()]
    for agent in agents.values():  # each tenant's call rings that tenant's agent
        agent.wait("incoming", timeout=15)
        agent.wait("state", state="CONFIRMED")

    # Live: each supervisor sees one call, its own, and not the other's.
    live: dict[str, str] = {}
    for tenant, did in TENANTS.items():
        def one_live_call(tenant: str = tenant) -> bool:
            calls = _ok(api.get("/v1/calls", headers=supervisors[tenant]))["data"]
            return len(calls) == 1 and calls[0]["status"] == "answered"
        wait_for(one_live_call, f"{tenant}'s answered call in /v1/calls", timeout=10)
        [call] = _ok(api.get("/v1/calls", headers=supervisors[tenant]))["data"]
        assert call["callee"] == did
        live[tenant] = call["call_id"]
    assert live["acme"] != live["globex"]
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        for path in (f"/v1/calls/{live[other]}", f"/v1/calls/{live[other]}/timeline"):
            assert api.get(path, headers=supervisors[tenant]).status_code == 404, path
        assert _ok(api.get(f"/v1/calls/{live[tenant]}", headers=supervisors[tenant]))[
            "call_id"] == live[tenant]

    for caller in callers:  # the agents hang up; the platform says BYE to each caller
        assert caller.wait(timeout=40) == 0, "a sipp caller failed"

    # History: one CDR each, of its tenant, answered by its own alice.
    for tenant, did in TENANTS.items():
        def one_final_cdr(tenant: str = tenant) -> bool:
            return bool(_ok(api.get("/v1/cdrs", headers=supervisors[tenant]))["count"] == 1)
        wait_for(one_final_cdr, f"{tenant}'s CDR", timeout=15)
        [cdr] = _ok(api.get("/v1/cdrs", headers=supervisors[tenant]))["data"]
        assert (cdr["call_id"], cdr["tenant"], cdr["callee"]) == (
            live[tenant], tenant, did)
        assert (cdr["queue"], cdr["agents"], cdr["disposition"]) == (
            "sales", ["alice"], "answered")
        other = "globex" if tenant == "acme" else "acme"
        assert api.get(f"/v1/calls/{live[other]}", headers=supervisors[tenant]).status_code \
            == 404
        # The queue figures are the tenant's own queue `sales`: one call each.
        figures = _ok(api.get("/v1/queues/sales/live", headers=supervisors[tenant]))
        assert (figures["counters"]["offered"], figures["counters"]["answered"]) == (1, 1)
