"""The worker's dialplan, read from the command line or a TOML/JSON file.

Matching is the domain's: the rules are loaded into an in-memory
``domain.numbers.Dialplan`` (never saved), so a rule means exactly what it
means when the dialplan is configured through the event store, and the first
matching rule wins, in the order written.

Command-line form: ``KIND:PATTERN=URI`` with KIND ``exact``, ``prefix`` or
``regex`` (``prefix:1=sip:{number}@10.0.0.5:5060``). File form::

    [[route]]
    name = "internal"        # optional
    kind = "prefix"
    pattern = "1"
    target = "sip:{number}@10.0.0.5:5060"
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.errors import InvalidValue
from domain.numbers import Dialplan, DialRule, MatchKind

STATIC_KEY = "b2bua-static"


class DialplanError(ValueError):
    """A rule or dialplan file that cannot be understood."""


def parse_spec(spec: str) -> tuple[MatchKind, str, str]:
    """``KIND:PATTERN=URI`` -> (kind, pattern, uri template)."""
    kind, colon, rest = spec.partition(":")
    # A regex may hold '=', a URI template starts with sip: or sips:.
    cut = rest.rfind("=sip")
    if not colon or cut < 0:
        raise DialplanError(f"route {spec!r} is not KIND:PATTERN=sip:URI")
    try:
        return MatchKind(kind.strip()), rest[:cut], rest[cut + 1 :].strip()
    except ValueError:
        raise DialplanError(f"route {spec!r}: kind must be exact, prefix or regex") from None


def build(rules: Iterable[tuple[MatchKind, str, str]]) -> Dialplan:
    plan = Dialplan.create(STATIC_KEY, "static dialplan", occurred_at=datetime.now(UTC))
    for index, (kind, pattern, template) in enumerate(rules):
        try:
            plan.add_rule(DialRule.checked(f"rule-{index}", kind, pattern, template),
                          plan.created_at)
        except InvalidValue as error:
            raise DialplanError(f"rule {index + 1} ({pattern!r}): {error}") from None
    return plan


def _file_rules(path: Path) -> list[tuple[MatchKind, str, str]]:
    text = path.read_text()
    data: Mapping[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    try:
        return [(MatchKind(str(r["kind"])), str(r["pattern"]), str(r["target"]))
                for r in data["route"]]
    except (KeyError, TypeError, ValueError) as error:
        message = f"{path}: expected [[route]] entries with kind, pattern and target"
        raise DialplanError(message) from error


def load(specs: Sequence[str], path: Path | None = None) -> Dialplan:
    """Command-line rules first, then the file's, in order."""
    rules = [parse_spec(spec) for spec in specs]
    if path is not None:
        rules += _file_rules(path)
    return build(rules)
