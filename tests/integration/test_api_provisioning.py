"""Provisioning API for agents, skills and queues, against the real database:
commands answer from the aggregate, reads come from the projections, and
every refusal is a problem that says what is wrong (404, 409 naming the
current state, 422 naming the field)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from api.routes import CALLCENTRE_ROUTERS
from domain.agent import Agent
from domain.queue import Queue
from tests.integration.api_support import assert_problem, running_api
from tests.integration.callcentre_api_support import Api, alice, open_api, sales


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with open_api(database_url) as opened:
        yield opened


# -- agents ------------------------------------------------------------------------------


def test_created_agent_is_logged_out_and_readable_once_projected(api) -> None:
    created = alice(api, auto_pause_after=3)
    assert (created["state"], created["skills"], created["version"]) == (
        "logged_out", {"english": 80}, 1)
    assert created["id"] == str(Agent.id_for("alice"))
    # Not projected yet (no runner here): the store has it, so not 404 but 503, retry later.
    assert api.problem("GET", "/v1/agents/alice", 503)["type"].endswith("not-projected-yet")
    api.problem("GET", "/v1/agents/nobody", 404)  # in neither the store nor the projection
    api.project()
    read = api.ok("GET", "/v1/agents/alice")
    assert read == created
    listed = api.ok("GET", "/v1/agents")
    assert (listed["count"], listed["data"][0]["key"]) == (1, "alice")


def test_agent_presence_commands_move_the_state(api) -> None:
    alice(api)
    login = api.ok("POST", "/v1/agents/alice/login",
                   json={"device_uri": "sip:1001@pbx.example.com"})
    assert (login["state"], login["device_uri"]) == ("available", "sip:1001@pbx.example.com")
    paused = api.ok("POST", "/v1/agents/alice/pause", json={"reason": "lunch"})
    assert (paused["state"], paused["pause_reason"]) == ("paused", "lunch")
    assert api.ok("POST", "/v1/agents/alice/unpause")["state"] == "available"
    assert api.ok("POST", "/v1/agents/alice/logout")["state"] == "logged_out"
    api.project()
    assert api.ok("GET", "/v1/agents/alice")["state"] == "logged_out"
    intervals = api.ok("GET", "/v1/agents/alice/intervals")
    assert [i["state"] for i in intervals["data"]] == [
        "logged_out", "available", "paused", "available", "logged_out"]
    assert intervals["data"][2]["reason"] == "lunch"
    assert intervals["data"][-1]["ended_at"] is None


def test_conflicting_state_changes_are_409_naming_the_current_state(api) -> None:
    alice(api)
    body = api.problem("POST", "/v1/agents/alice/pause", 409, json={"reason": "lunch"})
    assert "logged_out" in body["detail"]
    assert body["type"] == "urn:dialtone:problem:conflict"
    api.ok("POST", "/v1/agents/alice/login", json={"device_uri": "sip:1001@pbx"})
    assert "available" in api.problem("POST", "/v1/agents/alice/unpause", 409)["detail"]
    assert "available" in api.problem("POST", "/v1/agents/alice/login", 409,
                                      json={"device_uri": "sip:1001@pbx"})["detail"]


def test_logout_while_on_a_call_is_409_naming_on_call(api) -> None:
    alice(api)
    queue = sales(api)
    api.ok("PUT", "/v1/queues/sales/members/alice", json={"penalty": 0})
    api.ok("POST", "/v1/agents/alice/login", json={"device_uri": "sip:1001@pbx"})
    call, now = uuid4(), datetime.now(UTC)
    api.service.enqueue_call(Queue.id_for("sales"), call, 0, now)
    api.service.offer_call(Queue.id_for("sales"), call, [Agent.id_for("alice")], now)
    api.service.accept_offer(Agent.id_for("alice"), call, now)
    body = api.problem("POST", "/v1/agents/alice/logout", 409)
    assert "on_call" in body["detail"]
    assert "on_call" in api.problem("DELETE", "/v1/agents/alice", 409)["detail"]
    assert queue["counters"]["offered"] == 0


def test_unknown_agent_is_404_for_every_command(api) -> None:
    for method, path, body in [
        ("GET", "/v1/agents/nobody", None),
        ("PATCH", "/v1/agents/nobody", {"auto_pause_after": 2}),
        ("DELETE", "/v1/agents/nobody", None),
        ("PUT", "/v1/agents/nobody/skills/french", {"level": 5}),
        ("DELETE", "/v1/agents/nobody/skills/french", None),
        ("POST", "/v1/agents/nobody/login", {"device_uri": "sip:1@pbx"}),
        ("POST", "/v1/agents/nobody/pause", {"reason": "x"}),
        ("POST", "/v1/agents/nobody/unpause", None),
        ("POST", "/v1/agents/nobody/logout", None),
        ("POST", "/v1/agents/nobody/wrap-up/finish", None),
        ("GET", "/v1/agents/nobody/intervals", None),
    ]:
        problem = api.problem(method, path, 404, json=body)
        assert "nobody" in problem["detail"] or "agent" in problem["detail"], (method, path)


def test_invalid_agent_input_is_422_naming_the_field(api) -> None:
    cases = [
        ({"key": "Alice", "name": "A"}, "key"),
        ({"key": "alice", "name": ""}, "name"),
        ({"key": "alice", "name": "A", "skills": {"english": 101}}, "skills.english"),
        ({"key": "alice", "name": "A", "auto_pause_after": 0}, "auto_pause_after"),
        ({"key": "alice", "name": "A", "colour": "blue"}, "colour"),
    ]
    for body, field in cases:
        problem = api.problem("POST", "/v1/agents", 422, json=body)
        # A target's errors name its kind too (`overflow.number.value`).
        fields = [e["field"] for e in problem["errors"]]
        assert any(f == field or f.startswith(f"{field}.") for f in fields), (body, problem)
    alice(api)
    problem = api.problem("POST", "/v1/agents/alice/login", 422, json={"device_uri": "1001"})
    assert problem["errors"][0]["field"] == "device_uri"
    assert api.problem("POST", "/v1/agents", 409, json={"key": "alice", "name": "Again"})


def test_agent_skills_and_settings_change_and_show_up_in_skills(api) -> None:
    alice(api)
    updated = api.ok("PATCH", "/v1/agents/alice",
                     json={"skills": {"french": 40, "german": 10}, "auto_pause_after": 2})
    assert (updated["skills"], updated["auto_pause_after"]) == (
        {"french": 40, "german": 10}, 2)
    assert api.ok("PUT", "/v1/agents/alice/skills/spanish",
                  json={"level": 70})["skills"]["spanish"] == 70
    assert "german" not in api.ok("DELETE", "/v1/agents/alice/skills/german")["skills"]
    api.problem("DELETE", "/v1/agents/alice/skills/german", 404)
    cleared = api.ok("PATCH", "/v1/agents/alice", json={"auto_pause_after": None})
    assert cleared["auto_pause_after"] is None
    sales(api, required_skills={"french": 30})
    api.project()
    skills = api.ok("GET", "/v1/skills")
    assert skills["data"] == [{"skill": "french", "agents": 1, "queues": 1},
                              {"skill": "spanish", "agents": 1, "queues": 0}]


def test_retired_agent_is_logged_out_and_leaves_every_queue(api) -> None:
    alice(api)
    sales(api)
    api.ok("PUT", "/v1/queues/sales/members/alice", json={"penalty": 1})
    api.ok("POST", "/v1/agents/alice/login", json={"device_uri": "sip:1001@pbx"})
    assert api.ok("DELETE", "/v1/agents/alice")["state"] == "logged_out"
    api.project()
    assert api.ok("GET", "/v1/queues/sales")["members"] == []
    assert api.ok("GET", "/v1/agents", params={"queue": "sales"})["count"] == 0


# -- queues ------------------------------------------------------------------------------


def test_queue_with_every_setting_round_trips(api) -> None:
    api.ok("POST", "/v1/queues", 201, json={"key": "backup", "name": "Backup"})
    created = sales(api, strategy="skills_based", service_level_s=30, wrap_up_s=15,
                    offer_timeout_s=20, music_on_hold="jazz", announce_position=True,
                    max_wait_s=300, overflow={"kind": "queue", "value": "backup"},
                    required_skills={"english": 50})
    assert created["overflow"] == {"kind": "queue", "value": str(Queue.id_for("backup"))}
    api.project()
    read = api.ok("GET", "/v1/queues/sales")
    assert read == created
    assert api.ok("GET", "/v1/queues")["count"] == 2


def test_queue_update_changes_settings_and_clears_overflow(api) -> None:
    sales(api, max_wait_s=60, overflow={"kind": "number", "value": "+3225550100"})
    updated = api.ok("PATCH", "/v1/queues/sales",
                     json={"strategy": "round_robin", "wrap_up_s": 5, "music_on_hold": "calm"})
    assert (updated["strategy"], updated["wrap_up_s"], updated["music_on_hold"]) == (
        "round_robin", 5.0, "calm")
    assert updated["overflow"]["value"] == "+3225550100"
    cleared = api.ok("PATCH", "/v1/queues/sales", json={"max_wait_s": None, "overflow": None})
    assert (cleared["max_wait_s"], cleared["overflow"]) == (None, None)
    api.project()
    assert api.ok("GET", "/v1/queues/sales")["version"] == cleared["version"]


def test_queue_short_abandon_threshold_is_set_and_projected(api) -> None:
    assert sales(api)["short_abandon_s"] == 5.0  # the default
    updated = api.ok("PATCH", "/v1/queues/sales", json={"short_abandon_s": 8})
    assert updated["short_abandon_s"] == 8.0
    api.project()
    assert api.ok("GET", "/v1/queues/sales")["short_abandon_s"] == 8.0
    api.ok("PATCH", "/v1/queues/sales", 422, json={"short_abandon_s": 601})


def test_queue_recording_policy_is_set_read_and_projected(api) -> None:
    assert sales(api)["record_calls"] is False  # the default
    api.ok("POST", "/v1/queues", 201, json={"key": "care", "name": "Care", "record_calls": True})
    stopped = api.ok("PATCH", "/v1/queues/care", json={"record_calls": False})
    assert stopped["record_calls"] is False
    started = api.ok("PATCH", "/v1/queues/sales", json={"record_calls": True})
    assert started["record_calls"] is True
    api.project()
    assert api.ok("GET", "/v1/queues/sales")["record_calls"] is True
    assert api.ok("GET", "/v1/queues/care")["record_calls"] is False
    assert api.ok("GET", "/v1/queues/care/timeline")  # the policy changes are events
    api.ok("PATCH", "/v1/queues/sales", 422, json={"record_calls": "sometimes"})


def test_invalid_queue_input_is_422_naming_the_field(api) -> None:
    cases = [
        ({"key": "sales", "name": "S", "strategy": "random"}, "strategy"),
        ({"key": "sales", "name": "S", "service_level_s": 0}, "service_level_s"),
        ({"key": "sales", "name": "S", "max_wait_s": 60}, ""),  # overflow missing
        ({"key": "sales", "name": "S", "max_wait_s": 60,
          "overflow": {"kind": "hangup"}}, "overflow"),
        ({"key": "sales", "name": "S", "max_wait_s": 60,
          "overflow": {"kind": "number", "value": "abc"}}, "overflow"),
    ]
    for body, field in cases:
        problem = api.problem("POST", "/v1/queues", 422, json=body)
        # A target's errors name its kind too (`overflow.number.value`).
        fields = [e["field"] for e in problem["errors"]]
        assert any(f == field or f.startswith(f"{field}.") for f in fields), (body, problem)
    # An overflow queue that does not exist: the body is wrong, not a resource missing.
    nowhere = {"max_wait_s": 60, "overflow": {"kind": "queue", "value": "nowhere"}}
    missing = api.problem("POST", "/v1/queues", 422, json={"key": "sales", "name": "S",
                                                            **nowhere})
    assert "queue" in missing["detail"]
    assert [(e["field"], e["location"]) for e in missing["errors"]] == [
        ("overflow.value", "body")]
    sales(api)
    missing = api.problem("PATCH", "/v1/queues/sales", 422, json=nowhere)
    assert missing["errors"][0]["field"] == "overflow.value"
    api.problem("PATCH", "/v1/queues/nowhere", 404, json=nowhere)  # the path decides


@pytest.mark.parametrize("name", ["promo/_closed", "promo/-closed", "a//b", "a..b"])
def test_an_overflow_recording_no_worker_could_find_is_422(api, name: str) -> None:
    # The workers look a recording up by domain.addressing.RECORDING_PATTERN: a name
    # it refuses would be stored, then never played (the caller hears a goodbye).
    body = {"key": "sales", "name": "S", "max_wait_s": 60,
            "overflow": {"kind": "recording", "value": name}}
    problem = api.problem("POST", "/v1/queues", 422, json=body)
    assert [e["field"] for e in problem["errors"]] == ["overflow.recording.value"], problem
    body["overflow"]["value"] = "promo/closed"  # type: ignore[index]
    assert api.ok("POST", "/v1/queues", 201, json=body)["overflow"]["value"] == "promo/closed"


def test_memberships_with_penalties(api) -> None:
    alice(api)
    sales(api)
    assert api.ok("PUT", "/v1/queues/sales/members/alice",
                  json={"penalty": 2})["members"][0]["penalty"] == 2
    assert api.ok("PUT", "/v1/queues/sales/members/alice",
                  json={"penalty": 0})["members"][0]["penalty"] == 0
    api.problem("PUT", "/v1/queues/sales/members/alice", 422, json={"penalty": -1})
    api.problem("PUT", "/v1/queues/sales/members/nobody", 404, json={"penalty": 0})
    api.problem("PUT", "/v1/queues/nowhere/members/alice", 404, json={"penalty": 0})
    api.project()
    members = api.ok("GET", "/v1/queues/sales/members")
    assert [(m["key"], m["penalty"], m["state"]) for m in members["data"]] == [
        ("alice", 0, "logged_out")]
    assert api.ok("DELETE", "/v1/queues/sales/members/alice")["members"] == []
    api.problem("DELETE", "/v1/queues/sales/members/alice", 404)


def test_queue_live_shows_calls_positions_waits_and_agents_by_state(api) -> None:
    alice(api)
    api.ok("POST", "/v1/agents", 201, json={"key": "bob", "name": "Bob"})
    sales(api)
    for agent in ("alice", "bob"):
        api.ok("PUT", f"/v1/queues/sales/members/{agent}", json={"penalty": 0})
    api.ok("POST", "/v1/agents/alice/login", json={"device_uri": "sip:1001@pbx"})
    queue_id, now = Queue.id_for("sales"), datetime.now(UTC)
    calls = [uuid4() for _ in range(3)]
    for n, call in enumerate(calls):
        api.service.enqueue_call(queue_id, call, 5 if n == 2 else 0, now)
    api.service.offer_call(queue_id, calls[2], [Agent.id_for("alice")], now)
    api.project()
    live = api.ok("GET", "/v1/queues/sales/live")
    assert [(c["call_id"], c["position"]) for c in live["calls"]] == [
        (str(calls[2]), 1), (str(calls[0]), 2), (str(calls[1]), 3)]
    assert live["calls"][0]["ringing_agents"] == [str(Agent.id_for("alice"))]
    assert (live["calls_waiting"], live["calls_ringing"]) == (2, 1)
    assert live["agents"] == {"reserved": 1, "logged_out": 1}
    assert live["counters"]["offered"] == 3
    assert live["oldest_wait_s"] >= 0
    api.problem("GET", "/v1/queues/nowhere/live", 404)


def test_unknown_queue_is_404(api) -> None:
    for method, path, body in [
        ("GET", "/v1/queues/nowhere", None),
        ("PATCH", "/v1/queues/nowhere", {"wrap_up_s": 3}),
        ("GET", "/v1/queues/nowhere/members", None),
        ("DELETE", "/v1/queues/nowhere/members/alice", None),
    ]:
        api.problem(method, path, 404, json=body)


def test_commands_without_a_configured_service_are_503(database_url: str) -> None:
    with running_api(database_url, extra_routers=CALLCENTRE_ROUTERS) as client:
        assert_problem(client.post("/v1/agents", json={"key": "a", "name": "A"}), 503)
        assert client.get("/v1/agents").status_code == 200  # reads need only the database


def test_every_call_centre_operation_is_documented_with_problems(api) -> None:
    document = api.ok("GET", "/openapi.json")
    paths = {p: item for p, item in document["paths"].items()
             if p.startswith(("/v1/agents", "/v1/skills", "/v1/queues", "/v1/ivr-menus",
                              "/v1/numbers", "/v1/dialplans"))}
    assert len(paths) == 31  # with the timelines (5) and time travel (/at, 2) of issue 11
    for path, item in paths.items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("tags"), where
            success = "201" if method == "post" and path.count("/") == 2 else "200"
            assert operation["responses"][success]["content"]["application/json"], where
            errors = {s for s in operation["responses"] if s >= "400"}
            assert {"500", "503"} <= errors, where
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in errors, where
            for status in errors:
                assert list(operation["responses"][status]["content"]) == [
                    "application/problem+json"], (where, status)
