"""Hostile input through the API alone (issue 16): text with NUL, oversized
bodies and collections, out-of-range instants and unknown query parameters
are refused with a problem before anything is stored, and never reach a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.guards import MAX_BODY_BYTES
from domain.agent import Agent
from domain.numbers import MAX_RULES
from domain.skills import MAX_SKILLS
from tests.integration.callcentre_api_support import Api, alice, open_api, sales

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

NUL = "\u0000"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with open_api(database_url) as opened:
        yield opened


def stored_events(api: Api) -> int:
    return api.service.recorder.max_notification_id() or 0


def rules(count: int) -> list[dict[str, str]]:
    return [{"name": f"r{n}", "kind": "exact", "pattern": f"{1000 + n}",
             "uri_template": "sip:{number}@trunk.example.com"} for n in range(count)]


# -- NUL ------------------------------------------------------------------------------

NUL_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/agents", {"key": "nul", "name": f"Nul{NUL}Agent"}),
    ("POST", "/v1/queues", {"key": "nulq", "name": "Q", "music_on_hold": f"a{NUL}"}),
    ("POST", "/v1/ivr-menus", {"key": "m", "name": "M", "prompt": f"press{NUL}"}),
    ("POST", "/v1/numbers", {"did": "+3225550100", "destination": {"kind": "number",
                                                                 "value": f"12{NUL}"}}),
    ("POST", "/v1/numbers", {"did": "+3225550100", "label": NUL,
                             "destination": {"kind": "number", "value": "1234"}}),
    ("POST", "/v1/dialplans", {"key": "p", "name": "P", "rules": [
        {"name": "r", "kind": "regex", "pattern": f".{NUL}", "uri_template": "sip:x@y"}]}),
    ("POST", "/v1/dialplans", {"key": "p", "name": "P", "rules": [
        {"name": "r", "kind": "prefix", "pattern": "", "uri_template": f"sip:x{NUL}@y"}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_BODIES)
def test_text_with_nul_in_a_body_is_refused_before_it_is_stored(api, method, path, body):
    before = stored_events(api)
    problem = api.problem(method, path, 422, json=body)
    assert problem["errors"][0]["location"] == "body"
    assert stored_events(api) == before


def test_agent_commands_refuse_nul(api):
    alice(api)
    api.problem("POST", "/v1/agents/alice/login", 422, json={"device_uri": f"sip:a{NUL}@b"})
    api.problem("POST", "/v1/agents/alice/pause", 422, json={"reason": f"lunch{NUL}"})


@pytest.mark.parametrize(("path", "name"), [
    ("/v1/calls", "caller"), ("/v1/calls", "callee"), ("/v1/calls", "queue"),
    ("/v1/cdrs", "caller"), ("/v1/cdrs", "callee"), ("/v1/cdrs", "queue"),
    ("/v1/cdrs", "agent"), ("/v1/cdrs", "cursor"), ("/v1/agents", "queue"),
])
def test_nul_in_a_query_parameter_is_a_422_not_a_500(api, path, name):
    problem = api.problem("GET", f"{path}?{name}=%00", 422)
    assert problem["errors"][0]["field"] == name


def test_nul_in_a_dialplan_number_to_resolve_is_refused(api):
    api.ok("POST", "/v1/dialplans", 201, json={"key": "out", "name": "Out"})
    api.problem("GET", "/v1/dialplans/out/resolve?number=1%002", 422)


# -- bounds ---------------------------------------------------------------------------


def test_a_body_over_the_bound_is_413_by_content_length_and_by_bytes_streamed(api):
    before = stored_events(api)
    big = b'{"key": "p", "name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    headers = {"content-type": "application/json"}
    api.problem("POST", "/v1/dialplans", 413, content=big, headers=headers)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    api.problem("POST", "/v1/dialplans", 413, content=chunks(), headers=headers)
    assert stored_events(api) == before


def test_collections_in_bodies_are_bounded(api):
    api.problem("POST", "/v1/dialplans", 422,
                json={"key": "p", "name": "P", "rules": rules(MAX_RULES + 1)})
    many = {f"s{n}": 1 for n in range(MAX_SKILLS + 1)}
    api.problem("POST", "/v1/agents", 422, json={"key": "a", "name": "A", "skills": many})
    api.problem("POST", "/v1/queues", 422,
                json={"key": "q", "name": "Q", "required_skills": many})
    alice(api)
    api.problem("PATCH", "/v1/agents/alice", 422, json={"skills": many})


def test_a_dialplan_of_max_rules_is_accepted(api):
    plan = api.ok("POST", "/v1/dialplans", 201,
                  json={"key": "p", "name": "P", "rules": rules(MAX_RULES)})
    assert len(plan["rules"]) == MAX_RULES


def test_skills_added_one_at_a_time_stop_at_the_bound(api):
    alice(api, skills={f"s{n}": 1 for n in range(MAX_SKILLS)})
    api.problem("PUT", "/v1/agents/alice/skills/one-more", 422, json={"level": 5})
    assert len(api.service.get(Agent, Agent.id_for("alice")).skills) == MAX_SKILLS


# -- instants and unknown parameters ---------------------------------------------------


@pytest.mark.parametrize("query", [
    "to=0001-01-01T00:00:00Z",
    "from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z",
    "to=9999-12-31T23:59:59Z",
    "to=0001-01-01T00:00:00%2B05:00",
    "to=9999-12-31T23:00:00-05:00",
])
def test_cdr_ranges_at_the_edges_of_time_never_reach_a_500(api, query):
    response = api.client.get(f"/v1/cdrs?{query}")
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("query", ["to=0001-01-01T00:00:00Z", "from=9999-12-31T00:00:00Z"])
def test_agent_intervals_at_the_edges_of_time_never_reach_a_500(api, query):
    alice(api)
    api.project()
    response = api.client.get(f"/v1/agents/alice/intervals?{query}")
    assert response.status_code in (200, 422), response.text


@pytest.mark.parametrize("path", [
    "/v1/queues/sales/live?at=2025-01-01T00:00:00Z", "/v1/queues?limit=5",
    "/v1/cdrs?caller=1&callr=2", "/v1/calls?%00=1", "/healthz?verbose=1",
])
def test_unknown_query_parameters_are_refused(api, path):
    sales(api)
    api.project()
    problem = api.problem("GET", path, 422)
    assert problem["errors"][0]["location"] == "query"
    assert problem["errors"][0]["type"] == "extra_forbidden"


def test_declared_query_parameters_still_work(api):
    sales(api)
    api.project()
    api.ok("GET", "/v1/queues/sales/live")
    api.ok("GET", "/v1/cdrs?caller=1&limit=5")
