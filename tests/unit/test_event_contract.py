"""The integrator contract (docs/schemas/, docs/asyncapi.yaml) is generated from
the domain event classes, is current, validates what the relay really publishes,
and refuses breaking changes unless the event's version goes up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from click.testing import CliRunner
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from dialtone.cli import cli
from dialtone.commands import register
from projections import callcentre, calls
from projections.envelope import decode
from streams import schemas
from streams.schemas import (
    AGGREGATES,
    ContractBroken,
    data_schema,
    published_schema,
    topic_schema,
)
from streams.schemas_compat import breaking_changes
from streams.schemas_examples import example_messages
from streams.topics import topic_for

register(cli)  # the console script's subcommands, as main() adds them
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER  # uuid, date-time: checked too

@pytest.fixture(scope="module")
def messages() -> list[dict[str, Any]]:
    return example_messages()


def test_every_relayed_kind_has_a_published_schema() -> None:
    assert set(AGGREGATES) == {calls.KIND} | set(callcentre.KINDS)
    for kind in AGGREGATES:
        assert published_schema(kind), topic_for(kind)


def test_published_contract_is_what_the_event_classes_generate() -> None:
    stale = [str(p) for p in schemas.stale()]
    assert stale == [], "event classes changed: run `dialtone schemas`"


@pytest.mark.parametrize("kind", sorted(AGGREGATES))
def test_event_classes_break_nothing_that_was_published(kind: str) -> None:
    published = published_schema(kind)
    assert breaking_changes(published, topic_schema(kind, published)) == [], \
        "bump the event's class_version and add upcast_vN_vN+1 (docs/events.md, Versioning)"
    assert schemas.check_upcasters(kind) == []


def test_every_published_message_validates_against_its_topic_schema(
    messages: list[dict[str, Any]],
) -> None:
    validators = {kind: jsonschema.Draft202012Validator(published_schema(kind),
                                                        format_checker=FORMATS)
                  for kind in AGGREGATES}
    assert {m["source"].rsplit(":", 1)[1] for m in messages} == set(AGGREGATES)
    for message in messages:
        kind = message["source"].rsplit(":", 1)[1]
        errors = [e.message for e in validators[kind].iter_errors(message)]
        assert errors == [], message["type"]


def _closed(schema: object) -> object:
    """The schema with every object closed: it then says exactly what we publish."""
    if isinstance(schema, dict):
        return {k: False if k == "additionalProperties" and v is True else _closed(v)
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def test_every_published_data_field_is_in_the_schema(messages: list[dict[str, Any]]) -> None:
    closed = {kind: jsonschema.Draft202012Validator(_closed(published_schema(kind)),
                                                    format_checker=FORMATS)
              for kind in AGGREGATES}
    for message in messages:
        kind = message["source"].rsplit(":", 1)[1]
        name, version = message["type"].split(".")[2:]
        assert f"{name}.{version}" in published_schema(kind)["$defs"], message["type"]
        assert [e.message for e in closed[kind].iter_errors(message)] == [], message["type"]


def test_a_wrong_field_type_is_rejected(messages: list[dict[str, Any]]) -> None:
    created = next(m for m in messages if m["type"] == "dialtone.queue.created.v1")
    wrong = {**created, "data": {**created["data"], "service_level_s": "20"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, published_schema("queue"))


def test_enum_fields_take_the_domain_enum_values() -> None:
    defs = published_schema("call")["$defs"]
    assert defs["ended.v1"]["properties"]["disposition"]["enum"] == [
        "answered", "busy", "no-answer", "failed", "cancelled", "abandoned"]
    target = published_schema("ivrmenu")["$defs"]["option_set.v1"]["properties"]
    assert "queue" in target["target_kind"]["enum"]


# -- compatibility: test-only aggregates, so the real contract is left alone ----------

class WidgetV1(Aggregate):
    """Version 1 as stored long ago."""

    @event("Renamed")
    def rename(self, name: str) -> None:
        self.name = name


class WidgetV2(Aggregate):
    """The same aggregate after `Renamed` gained a required `reason` (version 2)."""

    class Renamed(Aggregate.Event):
        class_version = 2
        name: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = "unknown"  # what v1 events meant: no reason was asked

        def apply(self, widget: WidgetV2) -> None:
            vars(widget).update(name=self.name, reason=self.reason)

    def rename(self, name: str, reason: str) -> None:
        self.trigger_event(self.Renamed, name=name, reason=reason)


class WidgetUnversioned(Aggregate):
    """`reason` added as required, but class_version left at 1: a breaking change."""

    class Renamed(Aggregate.Event):
        name: str
        reason: str


class WidgetOptional(Aggregate):
    """`reason` added with a default, version 1: compatible."""

    class Renamed(Aggregate.Event):
        name: str
        reason: str = "unknown"


class WidgetRetyped(Aggregate):
    """`name` became an integer, version 1: a breaking change."""

    class Renamed(Aggregate.Event):
        name: int


def _schema_of(monkeypatch: pytest.MonkeyPatch, cls: type[Aggregate],
               published: dict[str, Any] | None = None) -> dict[str, Any]:
    monkeypatch.setitem(AGGREGATES, "widget", cls)
    return topic_schema("widget", published)


@pytest.mark.parametrize(("changed", "problem"), [
    (WidgetUnversioned, "renamed.v1: field 'reason' made required"),
    (WidgetRetyped, "renamed.v1: field 'name' changed"),
])
def test_a_breaking_change_without_a_new_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, changed: type[Aggregate], problem: str,
) -> None:
    v1 = _schema_of(monkeypatch, WidgetV1)
    found = breaking_changes(v1, _schema_of(monkeypatch, changed, v1))
    assert any(p.startswith(problem) for p in found), found


def test_a_removed_field_is_breaking(monkeypatch: pytest.MonkeyPatch) -> None:
    optional = _schema_of(monkeypatch, WidgetOptional)
    assert breaking_changes(optional, _schema_of(monkeypatch, WidgetV1, optional)) == [
        "renamed.v1: field 'reason' removed"]


def test_a_new_optional_field_is_compatible(monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = _schema_of(monkeypatch, WidgetV1)
    assert breaking_changes(v1, _schema_of(monkeypatch, WidgetOptional, v1)) == []


def test_a_new_version_keeps_the_old_one_published_and_is_compatible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1 = _schema_of(monkeypatch, WidgetV1)
    v2 = _schema_of(monkeypatch, WidgetV2, v1)
    assert breaking_changes(v1, v2) == []
    assert v2["$defs"]["renamed.v1"] == v1["$defs"]["renamed.v1"]  # old messages still valid
    assert v2["$defs"]["renamed.v2"]["required"] == ["name", "reason"]


def test_generate_refuses_to_publish_a_breaking_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    (docs / "schemas").mkdir(parents=True)
    for kind in AGGREGATES:  # the real contract, copied
        schemas.schema_path(kind, docs).write_text(schemas.schema_path(kind).read_text())
    published = published_schema("number", docs)
    published["$defs"]["relabelled.v1"]["properties"]["colour"] = {"type": "string"}
    schemas.schema_path("number", docs).write_text(json.dumps(published))
    with pytest.raises(ContractBroken, match=r"relabelled.v1: field 'colour' removed"):
        schemas.generate(docs)


class WidgetNoUpcaster(Aggregate):
    """Version 2 without the upcaster that would read stored version 1 events."""

    class Renamed(Aggregate.Event):
        class_version = 2
        name: str


def test_a_version_above_one_needs_its_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(AGGREGATES, "widget", WidgetV2)
    assert schemas.check_upcasters("widget") == []
    monkeypatch.setitem(AGGREGATES, "widget", WidgetNoUpcaster)
    assert schemas.check_upcasters("widget") == [
        "dialtone.widget.renamed.v2: no upcast_v1_v2"]


def test_a_stored_v1_event_is_read_and_published_as_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    old = Application[UUID]()  # in-memory store
    widget = WidgetV1()
    widget.rename("blue")
    old.save(widget)
    # WidgetV1 and WidgetV2 stand for one class at two points in time: the same
    # stored records, with the class's name (in the topics) as it is now.
    new = Application[UUID]()
    new.recorder.insert_events([
        StoredEvent(s.originator_id, s.originator_version,
                    s.topic.replace("WidgetV1", "WidgetV2"),
                    s.state.replace(b"WidgetV1", b"WidgetV2"))
        for s in old.recorder.select_events(widget.id)])

    read: WidgetV2 = new.repository.get(widget.id)

    assert isinstance(read, WidgetV2)
    assert (vars(read)["name"], vars(read)["reason"]) == ("blue", "unknown")
    monkeypatch.setitem(AGGREGATES, "widgetv2", WidgetV2)
    [_, renamed] = [json.loads(e.to_json())
                    for e in decode(new, new.recorder.select_notifications(start=1, limit=9))]
    assert renamed["type"] == "dialtone.widgetv2.renamed.v2"
    assert renamed["data"] == {"name": "blue", "reason": "unknown"}
    [v2] = [e for e in schemas.event_classes("widgetv2") if e.name == "renamed"]
    jsonschema.validate(renamed["data"], data_schema(v2))


def test_the_story_publishes_every_event_type_of_the_contract(
    messages: list[dict[str, Any]],
) -> None:
    """So every type's schema is checked against a real message (and the event class
    type is the relay's event type)."""
    generated = {e.type for kind in AGGREGATES for e in schemas.event_classes(kind)}
    assert {m["type"] for m in messages} == generated


def test_a_format_the_schema_names_is_checked(messages: list[dict[str, Any]]) -> None:
    reserved = next(m for m in messages if m["type"] == "dialtone.agent.reserved.v1")
    validator = jsonschema.Draft202012Validator(published_schema("agent"),
                                                format_checker=FORMATS)
    for field, wrong in (("call_id", "not-a-uuid"), ("offer_deadline", "tomorrow")):
        broken = {**reserved, "data": {**reserved["data"], field: wrong}}
        assert [e.validator for e in validator.iter_errors(broken)] == ["format"], field


@pytest.mark.parametrize("kind", sorted(AGGREGATES))
def test_a_message_published_before_the_envelope_changed_validates(
    messages: list[dict[str, Any]], kind: str,
) -> None:
    """Retained v1 messages from before 2026-12-02 carry an unpadded sequence."""
    first = next(m for m in messages if m["source"] == f"urn:dialtone:{kind}")
    jsonschema.validate({**first, "sequence": "1874"}, published_schema(kind),
                        format_checker=FORMATS)


def _with_sequence_pattern(schema: dict[str, Any], pattern: str) -> dict[str, Any]:
    sequence = {**schema["properties"]["sequence"], "pattern": pattern}
    return {**schema, "properties": {**schema["properties"], "sequence": sequence}}


@pytest.mark.parametrize("before", ["^[0-9]{20}$", "^[0-9]{1,20}$", "^[0-9]{2,19}$"])
def test_a_widened_pattern_is_compatible(before: str) -> None:
    current = published_schema("call")
    assert current["properties"]["sequence"]["pattern"] == "^[0-9]{1,20}$"
    assert breaking_changes(_with_sequence_pattern(current, before), current) == []


@pytest.mark.parametrize("before", ["^[0-9]+$", "^[0-9]{0,20}$", "^[0-9a-f]{20}$", "^.*$"])
def test_a_narrowed_or_other_pattern_is_breaking(before: str) -> None:
    current = published_schema("call")
    assert breaking_changes(_with_sequence_pattern(current, before), current) == [
        f"envelope: field 'sequence' changed from "
        f"{{'type': 'string', 'pattern': {before!r}}} "
        f"to {{'type': 'string', 'pattern': '^[0-9]{{1,20}}$'}}"]


def test_every_topic_has_an_example_in_events_md_that_validates() -> None:
    text = (schemas.DOCS / "events.md").read_text()
    for kind in AGGREGATES:
        topic = topic_for(kind)
        block = text.split(f"<!-- generated: {topic}.example -->\n", 1)[1]
        example = json.loads(block.split("```json\n", 1)[1].split("```", 1)[0])
        assert example["source"] == f"urn:dialtone:{kind}"
        validator = jsonschema.Draft202012Validator(
            published_schema(kind), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        assert [e.message for e in validator.iter_errors(example)] == [], topic
        assert f"`{example['type']}`" in text  # its type is in the topic's table


def test_dialtone_schemas_rewrites_a_stale_contract_and_check_says_so(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(schemas.DOCS / "schemas", docs / "schemas")
    for name in ("asyncapi.yaml", "events.md"):
        shutil.copy(schemas.DOCS / name, docs / name)
    (docs / "asyncapi.yaml").write_text("stale\n")

    stale = CliRunner().invoke(cli, ["schemas", "--check", "--docs", str(docs)])
    written = CliRunner().invoke(cli, ["schemas", "--docs", str(docs)])
    current = CliRunner().invoke(cli, ["schemas", "--check", "--docs", str(docs)])

    assert (stale.exit_code, "asyncapi.yaml" in stale.output) == (1, True)
    assert written.output == f"wrote {docs / 'asyncapi.yaml'}\n"
    assert current.exit_code == 0, current.output
    assert (docs / "asyncapi.yaml").read_text() == (schemas.DOCS / "asyncapi.yaml").read_text()
