"""Whether a generated topic schema breaks what was published (docs/events.md,
"Versioning"): the comparison `dialtone schemas` and the test suite run before
a schema is written."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_DEF_KEY = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>[0-9]+)$")
# A pattern that is one character class repeated over the whole value:
# `^[0-9]{20}$`, `^[0-9]{1,20}$`, `^[0-9]{1,}$`, `^[0-9]+$`, `^[0-9]*$`.
_REPETITION = re.compile(r"\^(?P<atom>\[[^\]]+\])"
                         r"(?:\{(?P<low>[0-9]+)(?P<range>,(?P<high>[0-9]*))?\}|(?P<op>[+*]))\$")


def split_key(key: str) -> tuple[str, int]:
    match = _DEF_KEY.match(key)
    if match is None:
        raise ValueError(f"not an event schema key (name.vN): {key!r}")
    return match["name"], int(match["version"])


def breaking_changes(published: Mapping[str, Any], generated: Mapping[str, Any]) -> list[str]:
    """What in `generated` breaks a consumer of `published`, per event type.

    Breaking: an event type gone (not replaced by a higher version), a field
    removed, a field's schema changed (type, format, allowed values), a field
    made required (also a new field without a default: stored events lack it).
    Not breaking: a new optional field, a new event type, a new version of a type,
    a pattern widened (see :func:`_widened`).
    """
    problems = _field_changes("envelope", published, generated)
    new_defs = generated.get("$defs", {})
    for key, old in published.get("$defs", {}).items():
        if key in new_defs:
            problems += _field_changes(key, old, new_defs[key])
            continue
        name, version = split_key(key)
        if not any(split_key(k)[0] == name and split_key(k)[1] > version for k in new_defs):
            problems.append(f"{key}: event type removed")
    return problems


def _field_changes(where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    problems = [f"{where}: field {name!r} removed" for name in old_fields
                if name not in new_fields]
    problems += [f"{where}: field {name!r} changed from {_shape(old_fields[name])} "
                 f"to {_shape(new_fields[name])}"
                 for name in old_fields
                 if name in new_fields and _shape(old_fields[name]) != _shape(new_fields[name])
                 and not _widened(_shape(old_fields[name]), _shape(new_fields[name]))]
    made_required = set(new.get("required", ())) - set(old.get("required", ()))
    problems += [f"{where}: field {name!r} made required" for name in sorted(made_required)]
    return problems


def _shape(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A field's schema without the words (description, default): what a consumer parses."""
    return {k: v for k, v in schema.items() if k not in {"description", "default", "title"}}


def _widened(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` differs from `old` only in a pattern that accepts more: the same
    character class repeated, over a range of lengths that holds the old one
    (`^[0-9]{20}$` -> `^[0-9]{1,20}$`). Every value valid before still is, the
    messages retained on the topics included."""
    rest = ({k: v for k, v in old.items() if k != "pattern"},
            {k: v for k, v in new.items() if k != "pattern"})
    before, after = _repetition(old.get("pattern")), _repetition(new.get("pattern"))
    return (rest[0] == rest[1] and before is not None and after is not None
            and before[0] == after[0] and after[1] <= before[1] and before[2] <= after[2])


def _repetition(pattern: object) -> tuple[str, int, float] | None:
    """`^[0-9]{1,20}$` -> ("[0-9]", 1, 20); None for a pattern of any other shape."""
    match = _REPETITION.fullmatch(pattern) if isinstance(pattern, str) else None
    if match is None:
        return None
    if match["op"]:
        return match["atom"], int(match["op"] == "+"), math.inf
    low = int(match["low"])
    if match["range"] is None:
        return match["atom"], low, low
    return match["atom"], low, int(match["high"]) if match["high"] else math.inf
