"""The generated parts of docs/events.md: per topic, a real example message
(from the story in streams/schemas_examples.py, run on the application
services) and the table of its event types with their `data` fields (from the
generated schema). Each part sits between ``<!-- generated: NAME -->`` and
``<!-- /generated -->``; the prose around them is written by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from streams.schemas import AGGREGATES, event_classes
from streams.topics import topic_for

# The event shown for each topic: one that says most about it.
EXAMPLE_TYPES = {
    "call": "dialtone.call.ended.v1",
    "agent": "dialtone.agent.created.v1",
    "queue": "dialtone.queue.call_answered.v1",
    "ivrmenu": "dialtone.ivrmenu.option_set.v1",
    "number": "dialtone.number.created.v1",
    "dialplan": "dialtone.dialplan.rule_added.v1",
}
_BLOCK = re.compile(r"(<!-- generated: (?P<name>[^ ]+) -->\n).*?(<!-- /generated -->)", re.S)


class GeneratedBlocksError(ValueError):
    """docs/events.md's generated blocks are not the ones the generator makes."""


def example_of(kind: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in messages if m["type"] == EXAMPLE_TYPES[kind])


def _example_block(kind: str, messages: list[dict[str, Any]]) -> str:
    return "```json\n" + json.dumps(example_of(kind, messages), indent=2) + "\n```\n"


def _table_block(kind: str, schema: Mapping[str, Any]) -> str:
    rows = ["| type | data fields (* required) |", "|---|---|"]
    for event in event_classes(kind):
        fields = schema["$defs"][event.key].get("properties", {})
        required = set(schema["$defs"][event.key].get("required", ()))
        cells = ", ".join(f"`{name}`{'*' if name in required else ''} ({_type(field)})"
                          for name, field in fields.items()) or "none"
        rows.append(f"| `{event.type}` | {cells} |")
    return "\n".join(rows) + "\n"


def _type(field: Mapping[str, Any]) -> str:
    if "enum" in field:
        return " / ".join("null" if v is None else str(v) for v in field["enum"])
    if "anyOf" in field:
        return " or ".join(_type(option) for option in field["anyOf"])
    kind = field.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(field.get("format", k) if k == "string" else k for k in kinds)


def blocks(schemas: Mapping[str, Mapping[str, Any]],
           messages: list[dict[str, Any]]) -> dict[str, str]:
    """Generated block name -> its content, for every topic."""
    found = {}
    for kind in AGGREGATES:
        topic = topic_for(kind)
        found[f"{topic}.example"] = _example_block(kind, messages)
        found[f"{topic}.types"] = _table_block(kind, schemas[kind])
    return found


def render_events_md(text: str, generated: Mapping[str, str]) -> str:
    """`text` with every generated block's content replaced."""
    present = {m["name"] for m in _BLOCK.finditer(text)}
    if present != set(generated):
        raise GeneratedBlocksError(
            f"docs/events.md: blocks missing {sorted(set(generated) - present)}, "
            f"unknown {sorted(present - set(generated))}")
    return _BLOCK.sub(lambda m: m[1] + generated[m["name"]] + m[3], text)
