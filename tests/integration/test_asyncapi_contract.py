"""docs/asyncapi.yaml, checked by the official AsyncAPI parser (@asyncapi/parser
from npm, which ``./dev test`` installs into .cache/asyncapi-parser from
tests/contract/package-lock.json): valid AsyncAPI 3, every topic a channel,
every event type a message, payloads that resolve to the published schemas.
Deliberately broken copies (an operation, a payload schema) are parsed in the
same run, so a parser that accepted anything would fail the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.schemas import AGGREGATES, event_classes
from streams.topics import topic_for

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
PARSER_MODULES = ROOT / ".cache" / "asyncapi-parser" / "node_modules"
VALIDATE = ROOT / "tests" / "contract" / "validate_asyncapi.cjs"


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The parser's verdict on the document, on a copy with an invalid operation
    and on one with an invalid payload schema (the parser stops at the schemas)."""
    node = shutil.which("node")
    assert node, "node is missing: ./dev test installs npm (and node)"
    assert (PARSER_MODULES / "@asyncapi" / "parser").is_dir(), \
        "the AsyncAPI parser is missing: ./dev test installs it (ensure_contract_tools)"
    broken_dir = tmp_path_factory.mktemp("asyncapi")
    (broken_dir / "schemas").symlink_to(ROOT / "docs" / "schemas")
    operation, payload = yaml.safe_load(DOCUMENT.read_text()), yaml.safe_load(DOCUMENT.read_text())
    operation["operations"]["receive_calls"]["action"] = "listen"
    first = next(iter(payload["components"]["messages"].values()))
    first["payload"]["schema"]["allOf"].append({"type": 5})  # not a JSON type
    paths = [DOCUMENT]
    for name, document in (("operation", operation), ("payload", payload)):
        paths.append(broken_dir / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run([node, str(VALIDATE), *map(str, paths)],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "NODE_PATH": str(PARSER_MODULES),
                               "NODE_NO_WARNINGS": "1"})
    assert done.returncode == 0, done.stderr
    good, bad_operation, bad_payload = json.loads(done.stdout)
    return {"document": good, "operation": bad_operation, "payload": bad_payload}


def test_asyncapi_document_is_valid_and_covers_every_topic_and_event_type(
    parsed: dict[str, dict[str, Any]],
) -> None:
    document = parsed["document"]
    assert (document["parsed"], document["errors"]) == (True, [])
    assert document["channels"] == [topic_for(kind) for kind in AGGREGATES]
    assert document["messages"] == [e.type for kind in AGGREGATES
                                    for e in event_classes(kind)]


def test_the_parser_rejects_a_broken_document(parsed: dict[str, dict[str, Any]]) -> None:
    assert [e["path"] for e in parsed["operation"]["errors"]] == [
        ["operations", "receive_calls", "action"]]
    payload_errors = [e["path"][-1] for e in parsed["payload"]["errors"]]
    assert "type" in payload_errors, parsed["payload"]  # payload schemas are checked too


def test_every_message_names_its_key_and_headers() -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    for message in document["components"]["messages"].values():
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
        # Described, not required: messages published before 2026-12-02 have none.
        assert "required" not in message["headers"]
        assert message["headers"]["properties"]["content-type"]["const"].startswith(
            "application/cloudevents+json")
        assert (DOCUMENT.parent / message["payload"]["schema"]["allOf"][0]["$ref"]).is_file()
