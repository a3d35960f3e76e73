"""The published contract, generated from the domain event classes.

One source of truth: each event class's dataclass fields and annotations give
the JSON Schema of its `data` (pydantic's TypeAdapter turns annotations into
JSON Schema); domain enums, whose *values* the events store as plain strings,
give the allowed values. The CloudEvents envelope is the one
projections/envelope.py writes. Each topic gets one file,
``docs/schemas/dialtone.<kinds>.v1.schema.json``: the envelope plus, per event
type, the schema of its `data`.

A published event type is never taken back: when a class's ``class_version``
goes up, the older version's schema stays in the file (messages of that type
are still retained on the topic) next to the new one. Generation refuses a
breaking change (a field removed, a type changed, a field made required) to an
event type whose version did not go up (streams/schemas_compat.py).

``dialtone schemas`` (dialtone/commands/schemas.py) rewrites docs/schemas/,
docs/asyncapi.yaml and the generated blocks of docs/events.md (examples, event
tables); ``--check`` only says whether they are current.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from eventsourcing.domain import Aggregate
from pydantic import TypeAdapter

from domain.addressing import TargetKind
from domain.agent import Agent
from domain.call import Call
from domain.ivr import IvrMenu
from domain.numbers import Dialplan, MatchKind, Number
from domain.queue import Queue
from domain.routing import RoutingStrategy
from domain.values import (
    Direction,
    Disposition,
    HangupSide,
    HoldSide,
    SupervisionMode,
    TransferKind,
)
from projections.envelope import CONTENT_TYPE, SEQUENCE_WIDTH, SOURCE, SPEC_VERSION
from streams.schemas_compat import breaking_changes, split_key
from streams.topics import topic_for

# The aggregate of each kind the relay publishes (kind = the class name, lower case).
AGGREGATES: dict[str, type[Aggregate]] = {
    cls.__name__.lower(): cls for cls in (Call, Agent, Queue, IvrMenu, Number, Dialplan)
}
# Event attributes that go into the envelope, not into `data` (projections/envelope.py).
ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp",
                             "originator_topic", "occurred_at"})
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DOCS = Path(__file__).resolve().parents[1] / "docs"

# Fields stored as the value of a domain enum: (kind, field) -> the enum.
ENUMS: dict[tuple[str, str], type[StrEnum]] = {
    ("call", "direction"): Direction,
    ("call", "disposition"): Disposition,
    ("call", "hangup_side"): HangupSide,
    ("call", "mode"): SupervisionMode,
    ("call", "kind"): TransferKind,
    ("call", "side"): HoldSide,
    ("queue", "strategy"): RoutingStrategy,
    ("queue", "target_kind"): TargetKind,
    ("ivrmenu", "target_kind"): TargetKind,
    ("ivrmenu", "default_kind"): TargetKind,
    ("number", "target_kind"): TargetKind,
    ("dialplan", "kind"): MatchKind,
}
# What a field means where its name does not say it: (kind, field) or ("*", field).
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("*", "tenant"): "The tenant the aggregate belongs to. Absent in events stored before "
                     "tenants existed: read it as `default`.",
    ("*", "call_id"): "The call's aggregate id (the `subject` of its dialtone.calls.v1 events).",
    ("*", "agent_id"): "The agent's aggregate id (the `subject` of its dialtone.agents.v1 events).",
    ("*", "queue_id"): "The queue's aggregate id; null: a direct call, not from a queue.",
    ("*", "target_value"): "What the target kind points at (a queue or IVR menu id, a number, "
                           "a recording name); null for `repeat` and `hangup`.",
    ("queue", "position"): "call_requeued: the 1-based place in the queue the call went "
                           "back to (the head of its priority band, behind calls that also "
                           "rang and arrived before it). Absent on events stored before it "
                           "was recorded: read it as the head of the call's band.",
    ("call", "caller"): "From user part / number as received",
    ("call", "callee"): "Requested number (Request-URI user part)",
    ("call", "sip_call_id"): "SIP Call-ID of the inbound leg",
    ("call", "target"): "SIP URI the call is sent to",
    ("call", "queue"): "queue key",
    ("call", "agent"): "agent key",
    ("call", "ref"): "URI of the recording (file:// or s3://)",
    ("call", "bucket"): "object storage bucket holding the recording",
    ("call", "key"): "object key of the recording in its bucket (`<tenant>/<day>/<call id>.wav`)",
    ("call", "size_bytes"): "size of the stored object in bytes",
    ("call", "sha256"): "SHA-256 of the stored object, lowercase hex",
    ("call", "reason"): "why the object was deleted (`retention`)",
    ("call", "side"): "whose phone put the call on hold or took it off (its re-INVITE or "
                      "UPDATE; `callee` also for an agent consulting for an attended "
                      "transfer); `unknown`: not said. Absent in events stored before it "
                      "was recorded: read it as `unknown`.",
    ("call", "mos"): "E-model MOS estimate (1-5)",
    ("call", "rtt_ms"): "RTCP round-trip time; null when none was measured",
    ("agent", "skills"): "skill name -> level",
    ("agent", "auto_pause_after"): "missed offers before the agent is paused; null: never",
    ("agent", "wrap_up_until"): "end of after-call work; null: straight to available",
    ("dialplan", "position"): "0-based index of the rule in the dialplan",
}
# Bounds the domain enforces (domain/call.py MediaQuality.checked, SIP status codes).
BOUNDS: dict[tuple[str, str], dict[str, float]] = {
    ("call", "sip_status"): {"minimum": 100, "maximum": 699},
    ("call", "duration_s"): {"minimum": 0},
    ("call", "size_bytes"): {"minimum": 0},
    ("call", "mos"): {"minimum": 1, "maximum": 5},
    ("call", "jitter_ms"): {"minimum": 0},
    ("call", "loss_pct"): {"minimum": 0, "maximum": 100},
    ("call", "rtt_ms"): {"minimum": 0},
}
_TENANT_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,63}$"
# The day the relay began to zero-pad `sequence` and to send the `content-type`
# header (commit 6971964): messages still retained from before have neither.
ENVELOPE_CHANGED_ON = "2026-12-02"
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


@dataclasses.dataclass(frozen=True)
class EventClass:
    kind: str  # call, agent, ...
    name: str  # snake case: agent_connected
    version: int  # class_version
    cls: type[Aggregate.Event]

    @property
    def type(self) -> str:
        """The CloudEvents type the relay gives it (projections.envelope.event_type)."""
        return f"dialtone.{self.kind}.{self.name}.v{self.version}"

    @property
    def key(self) -> str:
        return f"{self.name}.v{self.version}"


def event_classes(kind: str) -> list[EventClass]:
    """Every event an aggregate of `kind` triggers, in class-body order."""
    aggregate = AGGREGATES[kind]
    nested = [v for k, v in vars(aggregate).items()
              if isinstance(v, type) and issubclass(v, Aggregate.Event) and k != "Event"]
    created = [c for c in nested if issubclass(c, Aggregate.Created)]
    if len(created) > 1:
        # eventsourcing re-parents Aggregate.Created as `<Aggregate>.Created` even when
        # the aggregate names its own created event (Call.Initiated): never triggered.
        nested = [c for c in nested if c.__name__ != "Created"]
    return [EventClass(kind, _CAMEL_BOUNDARY.sub("_", c.__name__).lower(),
                       int(getattr(c, "class_version", 1)), c) for c in nested]


def data_schema(event: EventClass) -> dict[str, Any]:
    """The JSON Schema of an event's `data`: its own fields, as the relay writes them."""
    hints = typing.get_type_hints(event.cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(event.cls):
        if f.name in ENVELOPE_FIELDS:
            continue
        properties[f.name] = _field_schema(event.kind, f.name, hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        elif f.default is not dataclasses.MISSING:
            properties[f.name]["default"] = _json_default(f.default)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": True}
    doc = event.cls.__doc__ or ""
    if doc and not doc.startswith(f"{event.cls.__name__}("):  # not dataclass's signature
        schema["description"] = " ".join(doc.split())
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def _field_schema(kind: str, name: str, annotation: Any) -> dict[str, Any]:
    # serialization mode: what the relay's _jsonable writes (UUID -> string, ...).
    schema = _nullable(TypeAdapter(annotation).json_schema(mode="serialization"))
    schema.update(BOUNDS.get((kind, name), {}))
    enum = ENUMS.get((kind, name))
    if enum is not None:
        schema = _with_enum(schema, [member.value for member in enum])
    if name == "tenant":
        schema["pattern"] = _TENANT_PATTERN
    description = DESCRIPTIONS.get((kind, name)) or DESCRIPTIONS.get(("*", name))
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's ``anyOf: [{type: T}, {type: null}]`` as the shorter ``type: [T, null]``."""
    options = schema.get("anyOf", [])
    if options and all(set(o) == {"type"} for o in options):
        return {"type": [o["type"] for o in options]}
    return schema


def _with_enum(schema: dict[str, Any], values: list[str]) -> dict[str, Any]:
    """`str` -> the enum's values; `str | None` -> the values or null."""
    nullable = schema.get("type") == ["string", "null"]
    return {"enum": [*values, None] if nullable else values}


def _json_default(value: object) -> object:
    return value.value if isinstance(value, StrEnum) else value


def envelope_schema(kind: str) -> dict[str, Any]:
    """The CloudEvents 1.0 attributes projections/envelope.py writes for `kind`."""
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time",
                     "datacontenttype", "sequence", "aggregateversion", "data"],
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {"type": "string", "format": "uuid",
                   "description": "Derived from (subject, aggregateversion): the same stored "
                                  "event always has the same id; deduplicate on it."},
            "source": {"const": f"{SOURCE}:{kind}"},
            "type": {"type": "string", "pattern": f"^dialtone\\.{kind}\\.[a-z_]+\\.v[0-9]+$"},
            "subject": {"type": "string", "format": "uuid",
                        "description": f"The {kind}'s aggregate id; also the message key."},
            "time": {"type": "string", "format": "date-time",
                     "description": "When the fact happened, not when it was stored."},
            "datacontenttype": {"const": "application/json"},
            "sequence": {
                # Up to the width, not exactly it: the topics retain messages published
                # before the padding, and they are v1 messages too.
                "type": "string", "pattern": f"^[0-9]{{1,{SEQUENCE_WIDTH}}}$",
                "description": f"The store position, zero-padded to {SEQUENCE_WIDTH} digits "
                               f"since {ENVELOPE_CHANGED_ON} (sorts lexicographically); "
                               "messages published before then carry it unpadded, with "
                               "fewer digits (`\"1874\"`). Read either with int()."},
            "aggregateversion": {"type": "integer", "minimum": 1,
                                 "description": f"Orders the {kind}'s events (1 = created)."},
            "data": {"type": "object"},
        },
    }


def topic_schema(kind: str, published: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schema of every message on `kind`'s topic. Event types of an older
    version than the class's current one are kept from `published`."""
    topic = topic_for(kind)
    current = {e.key: (e.type, data_schema(e)) for e in event_classes(kind)}
    for key, (type_, schema) in _retired(kind, published or {}, current).items():
        current[key] = (type_, schema)
    defs = {key: schema for key, (_, schema) in sorted(current.items())}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:dialtone:schema:{topic}",
        "title": f"{topic} message value",
        "description": (
            f"A CloudEvents 1.0 JSON event about one {kind}, in the Kafka binding's "
            f"structured mode (header `content-type: {CONTENT_TYPE}`; none on messages "
            f"published before {ENVELOPE_CHANGED_ON}). Key = the {kind}'s "
            "aggregate id (UTF-8), so all of its events are in one partition, in order. "
            "Generated from the domain event classes by `dialtone schemas`. "
            "Within a version new optional attributes and `data` fields may appear: "
            "consumers must ignore what they do not know. Removing a field, making one "
            "required or changing its type is a new event version (`...v2`)."),
        **envelope_schema(kind),
        "allOf": [{"if": {"properties": {"type": {"const": type_}}},
                   "then": {"properties": {"data": {"$ref": f"#/$defs/{key}"}}}}
                  for key, (type_, _) in sorted(current.items())],
        "$defs": defs,
    }


def _retired(kind: str, published: Mapping[str, Any],
             current: Mapping[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Published event types whose class has since moved to a higher version."""
    versions = {split_key(key)[0]: split_key(key)[1] for key in current}
    kept = {}
    for key, schema in published.get("$defs", {}).items():
        name, version = split_key(key)
        if key not in current and version < versions.get(name, 0):
            kept[key] = (f"dialtone.{kind}.{name}.v{version}", schema)
    return kept


def check_upcasters(kind: str) -> list[str]:
    """Classes above version 1 without the upcast_vN_vN+1 chain eventsourcing reads
    stored older versions with."""
    return [f"{e.type}: no {step}" for e in event_classes(kind)
            for step in (f"upcast_v{v}_v{v + 1}" for v in range(1, e.version))
            if not hasattr(e.cls, step)]


def schema_path(kind: str, docs: Path = DOCS) -> Path:
    return docs / "schemas" / f"{topic_for(kind)}.schema.json"


def published_schema(kind: str, docs: Path = DOCS) -> dict[str, Any]:
    path = schema_path(kind, docs)
    return json.loads(path.read_text()) if path.exists() else {}


def render(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generate(docs: Path = DOCS) -> dict[Path, str]:
    """Every contract file's text as it should be; raises ContractBroken on a
    breaking change or a missing upcaster."""
    # These import this module.
    from streams.schemas_asyncapi import asyncapi_document  # noqa: PLC0415
    from streams.schemas_docs import blocks, render_events_md  # noqa: PLC0415
    from streams.schemas_examples import example_messages  # noqa: PLC0415

    files: dict[Path, str] = {}
    problems: list[str] = []
    topics: dict[str, dict[str, Any]] = {}
    for kind in AGGREGATES:
        published = published_schema(kind, docs)
        generated = topics[kind] = topic_schema(kind, published)
        if published:  # a topic's first schema breaks nobody
            problems += [f"{topic_for(kind)}: {p}"
                         for p in breaking_changes(published, generated)]
        problems += check_upcasters(kind)
        files[schema_path(kind, docs)] = render(generated)
    if problems:
        raise ContractBroken(problems)
    files[docs / "asyncapi.yaml"] = asyncapi_document()
    events_md = docs / "events.md"
    files[events_md] = render_events_md(events_md.read_text(),
                                        blocks(topics, example_messages()))
    return files


class ContractBroken(Exception):  # noqa: N818 - reads as what happened to the contract
    """A generated schema breaks what was published: bump the event's class_version."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("breaking change without a new event version (bump class_version "
                         "and add upcast_vN_vN+1):\n  " + "\n  ".join(problems))


def stale(docs: Path = DOCS) -> Iterator[Path]:
    """Contract files whose text differs from what the classes generate."""
    for path, text in generate(docs).items():
        if not path.exists() or path.read_text() != text:
            yield path
