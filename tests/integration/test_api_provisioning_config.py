"""Provisioning API for IVR menus, numbers and dialplans, against the real
database: every endpoint, and its 404/409/422 problems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.ivr import IvrMenu
from domain.queue import Queue
from tests.integration.callcentre_api_support import Api, open_api, sales

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with open_api(database_url) as opened:
        yield opened


def menu(api: Api, key: str = "main", **extra: Any) -> dict[str, Any]:
    body = {"key": key, "name": "Main menu", "prompt": "welcome", **extra}
    return api.ok("POST", "/v1/ivr-menus", 201, json=body)


# -- IVR menus ---------------------------------------------------------------------------


def test_ivr_menu_with_options_round_trips(api) -> None:
    sales(api)
    menu(api, "billing")
    created = menu(api, timeout_s=8, max_retries=3,
                   default_action={"kind": "queue", "value": "sales"},
                   options={"1": {"kind": "queue", "value": "sales"},
                            "2": {"kind": "ivr", "value": "billing"},
                            "0": {"kind": "number", "value": "+3225550100"},
                            "*": {"kind": "repeat"}, "#": {"kind": "hangup"}})
    assert created["options"]["1"] == {"kind": "queue", "value": str(Queue.id_for("sales"))}
    assert created["options"]["2"] == {"kind": "ivr", "value": str(IvrMenu.id_for("billing"))}
    assert created["default_action"]["kind"] == "queue"
    assert api.ok("GET", "/v1/ivr-menus/main") == created
    assert [m["key"] for m in api.ok("GET", "/v1/ivr-menus")["data"]] == ["billing", "main"]


def test_ivr_menu_update_and_single_options(api) -> None:
    menu(api, options={"1": {"kind": "hangup"}, "2": {"kind": "repeat"}})
    updated = api.ok("PATCH", "/v1/ivr-menus/main",
                     json={"prompt": "hello", "max_retries": 0,
                           "options": {"9": {"kind": "hangup"}}})
    assert (updated["prompt"], updated["max_retries"], list(updated["options"])) == (
        "hello", 0, ["9"])
    added = api.ok("PUT", "/v1/ivr-menus/main/options/5",
                   json={"kind": "number", "value": "1234"})
    assert added["options"]["5"] == {"kind": "number", "value": "1234"}
    assert "5" not in api.ok("DELETE", "/v1/ivr-menus/main/options/5")["options"]
    assert "no option" in api.problem("DELETE", "/v1/ivr-menus/main/options/5", 404)["detail"]


def test_ivr_menu_refusals(api) -> None:
    menu(api)
    api.problem("POST", "/v1/ivr-menus", 409, json={"key": "main", "name": "M", "prompt": "p"})
    api.problem("GET", "/v1/ivr-menus/nope", 404)
    api.problem("PATCH", "/v1/ivr-menus/nope", 404, json={"prompt": "x"})
    api.problem("PUT", "/v1/ivr-menus/nope/options/1", 404, json={"kind": "hangup"})
    # A queue or menu the body names that does not exist: the body is wrong (422 on
    # the field naming it), the menu in the path is there (not 404).
    nowhere = {"kind": "queue", "value": "nowhere"}
    missing = api.problem("PUT", "/v1/ivr-menus/main/options/1", 422, json=nowhere)
    assert "queue" in missing["detail"]
    assert missing["errors"][0]["field"] == "value"
    for body, field in [({"default_action": nowhere}, "default_action.value"),
                        ({"options": {"1": {"kind": "hangup"}, "2": nowhere}}, "options.2.value")]:
        problem = api.problem("PATCH", "/v1/ivr-menus/main", 422, json=body)
        assert [(e["field"], e["location"]) for e in problem["errors"]] == [(field, "body")]
        problem = api.problem("POST", "/v1/ivr-menus", 422,
                              json={"key": "m3", "name": "M", "prompt": "p", **body})
        assert problem["errors"][0]["field"] == field
    # Both missing: the resource in the path decides (404).
    api.problem("PATCH", "/v1/ivr-menus/nope", 404, json={"default_action": nowhere})
    bad_key = api.problem("POST", "/v1/ivr-menus", 422, json={
        "key": "m2", "name": "M", "prompt": "p", "options": {"X": {"kind": "hangup"}}})
    assert bad_key["errors"][0]["field"].startswith("options")
    self_loop = api.problem("PUT", "/v1/ivr-menus/main/options/1", 422,
                            json={"kind": "ivr", "value": "main"})
    assert "own submenu" in self_loop["detail"]
    repeat_default = api.problem("PATCH", "/v1/ivr-menus/main", 422,
                                 json={"default_action": {"kind": "repeat"}})
    assert "repeat" in repeat_default["detail"]  # the document lists the kinds allowed there
    api.problem("PUT", "/v1/ivr-menus/main/options/11", 422, json={"kind": "hangup"})


# -- numbers -----------------------------------------------------------------------------


def test_number_lifecycle(api) -> None:
    sales(api)
    menu(api)
    created = api.ok("POST", "/v1/numbers", 201, json={
        "did": "+3225550100", "destination": {"kind": "ivr", "value": "main"}, "label": "Main"})
    assert (created["active"], created["destination"]["kind"]) == (True, "ivr")
    moved = api.ok("PATCH", "/v1/numbers/+3225550100",
                   json={"destination": {"kind": "queue", "value": "sales"}, "label": "Sales"})
    assert (moved["destination"]["value"], moved["label"]) == (str(Queue.id_for("sales")),
                                                               "Sales")
    assert api.ok("DELETE", "/v1/numbers/+3225550100")["active"] is False
    assert "inactive" in api.problem("DELETE", "/v1/numbers/+3225550100", 409)["detail"]
    assert api.ok("PATCH", "/v1/numbers/+3225550100", json={"active": True})["active"] is True
    assert api.ok("GET", "/v1/numbers/+3225550100")["label"] == "Sales"
    assert api.ok("GET", "/v1/numbers")["count"] == 1


def test_number_refusals(api) -> None:
    body = {"did": "100", "destination": {"kind": "number", "value": "200"}}
    api.ok("POST", "/v1/numbers", 201, json=body)
    api.problem("POST", "/v1/numbers", 409, json=body)
    api.problem("GET", "/v1/numbers/999", 404)
    api.problem("PATCH", "/v1/numbers/999", 404, json={"label": "x"})
    api.problem("DELETE", "/v1/numbers/999", 404)
    assert api.problem("POST", "/v1/numbers", 422, json={
        "did": "12a", "destination": {"kind": "hangup"}})["errors"][0]["field"] == "did"
    loop = api.problem("PATCH", "/v1/numbers/100", 422,
                       json={"destination": {"kind": "number", "value": "100"}})
    assert "itself" in loop["detail"]
    wrong_kind = api.problem("POST", "/v1/numbers", 422, json={
        "did": "300", "destination": {"kind": "recording", "value": "moh"}})
    assert wrong_kind["errors"][0]["field"] == "destination"
    nowhere = {"kind": "queue", "value": "nowhere"}
    missing = api.problem("POST", "/v1/numbers", 422, json={"did": "300", "destination": nowhere})
    assert missing["errors"][0]["field"] == "destination.value"
    missing = api.problem("PATCH", "/v1/numbers/100", 422, json={"destination": nowhere})
    assert missing["errors"][0]["field"] == "destination.value"
    api.problem("PATCH", "/v1/numbers/999", 404, json={"destination": nowhere})


# -- dialplans ---------------------------------------------------------------------------


def test_dialplan_rules_resolve_in_order(api) -> None:
    created = api.ok("POST", "/v1/dialplans", 201, json={"key": "out", "name": "Out", "rules": [
        {"name": "emergency", "kind": "exact", "pattern": "112",
         "uri_template": "sip:112@sos.example.com"},
        {"name": "trunk", "kind": "prefix", "pattern": "9",
         "uri_template": "sip:{rest}@trunk.example.com"},
    ]})
    assert [r["name"] for r in created["rules"]] == ["emergency", "trunk"]
    resolved = api.ok("GET", "/v1/dialplans/out/resolve", params={"number": "90123"})
    assert resolved == {"number": "90123", "uri": "sip:0123@trunk.example.com"}
    added = api.ok("PUT", "/v1/dialplans/out/rules/local", json={
        "kind": "regex", "pattern": r"(\d{4})", "uri_template": "sip:{1}@pbx", "position": 0})
    assert [r["name"] for r in added["rules"]] == ["local", "emergency", "trunk"]
    changed = api.ok("PUT", "/v1/dialplans/out/rules/trunk", json={
        "kind": "prefix", "pattern": "0", "uri_template": "sip:{rest}@trunk2", "position": 0})
    assert changed["rules"][0] == {"name": "trunk", "kind": "prefix", "pattern": "0",
                                   "uri_template": "sip:{rest}@trunk2"}
    removed = api.ok("DELETE", "/v1/dialplans/out/rules/local")
    assert [r["name"] for r in removed["rules"]] == ["trunk", "emergency"]
    assert api.ok("GET", "/v1/dialplans/out/resolve", params={"number": "5555"})["uri"] is None
    assert api.ok("GET", "/v1/dialplans")["count"] == 1
    assert api.ok("GET", "/v1/dialplans/out") == removed


def test_dialplan_refusals(api) -> None:
    api.ok("POST", "/v1/dialplans", 201, json={"key": "out", "name": "Outbound"})
    api.problem("POST", "/v1/dialplans", 409, json={"key": "out", "name": "Again"})
    api.problem("GET", "/v1/dialplans/nope", 404)
    api.problem("GET", "/v1/dialplans/nope/resolve", 404, params={"number": "1"})
    api.problem("DELETE", "/v1/dialplans/out/rules/nope", 404)
    bad_template = api.problem("PUT", "/v1/dialplans/out/rules/r1", 422, json={
        "kind": "prefix", "pattern": "9", "uri_template": "sip:{nope}@x"})
    assert "uri_template" in bad_template["detail"]  # the pattern names the placeholders
    bad_regex = api.problem("PUT", "/v1/dialplans/out/rules/r1", 422, json={
        "kind": "regex", "pattern": "(", "uri_template": "sip:x@y"})
    assert "regular expression" in bad_regex["detail"]
    # The body is one object per kind, so an unknown kind is named in the message.
    assert "'kind'" in api.problem("PUT", "/v1/dialplans/out/rules/r1", 422, json={
        "kind": "glob", "pattern": "9", "uri_template": "sip:x@y"})["detail"]
