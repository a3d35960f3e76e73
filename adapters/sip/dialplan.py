"""Static dialplan: dialled number -> SIP URI of the next hop.

A stop-gap until the Dialplan aggregate (domain/numbers.py) is configured from
the event store: rules come from the command line or a TOML/JSON file and the
first matching rule wins (file order, so what an operator reads is what runs).

Patterns follow the Asterisk convention operators know: a pattern starting with
``_`` uses ``X`` (any digit), ``Z`` (1-9), ``N`` (2-9), ``[1-5]`` (a class),
``.`` (one or more of anything) and ``!`` (zero or more); any other pattern
matches the number exactly. A target may name the number as ``{number}``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_TOKENS = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
_CLASS = re.compile(r"\[[^\]]+\]")


class DialplanError(ValueError):
    """A rule or dialplan file that cannot be understood."""


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    body, parts, i = pattern[1:], [], 0
    while i < len(body):
        char = body[i]
        if char == "[":
            match = _CLASS.match(body, i)
            if match is None:
                raise DialplanError(f"unclosed [ in pattern {pattern!r}")
            parts.append(match.group(0))
            i = match.end()
            continue
        parts.append(_TOKENS.get(char.upper(), re.escape(char)))
        i += 1
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Rule:
    pattern: str
    target: str

    def __post_init__(self) -> None:
        if not self.target.startswith(("sip:", "sips:")):
            raise DialplanError(f"target {self.target!r} is not a SIP URI")
        object.__setattr__(self, "_regex", _compile(self.pattern))

    def resolve(self, number: str) -> str | None:
        regex: re.Pattern[str] = getattr(self, "_regex")  # noqa: B009 - set in __post_init__
        if regex.fullmatch(number) is None:
            return None
        return self.target.replace("{number}", number)


class Dialplan:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    def resolve(self, number: str) -> str | None:
        """The target URI for ``number``; None when no rule matches."""
        for rule in self.rules:
            target = rule.resolve(number)
            if target is not None:
                return target
        return None

    @classmethod
    def from_specs(cls, specs: Sequence[str]) -> Dialplan:
        """Rules written ``PATTERN=URI`` (the ``--route`` command-line form)."""
        rules = []
        for spec in specs:
            pattern, sep, target = spec.partition("=")
            if not sep or not pattern:
                raise DialplanError(f"route {spec!r} is not PATTERN=URI")
            rules.append(Rule(pattern.strip(), target.strip()))
        return cls(rules)

    @classmethod
    def from_file(cls, path: Path) -> Dialplan:
        """A TOML or JSON file holding ``route = [{pattern = ..., target = ...}, ...]``."""
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        try:
            return cls(Rule(str(r["pattern"]), str(r["target"])) for r in data["route"])
        except (KeyError, TypeError) as error:
            message = f"{path}: expected route entries with pattern and target"
            raise DialplanError(message) from error
