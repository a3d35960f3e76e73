"""Dialplan rules: the value a ``Dialplan`` (domain/numbers.py) holds, and how
one rule turns a dialled number into a SIP URI.

Dialplan rules, tried in order, first match wins; only *diallable* numbers
(digits, ``*``, ``#``, optional leading ``+``, at most 32) resolve, so no
caller-supplied text ever reaches a URI unchecked:

* ``exact``  ``pattern`` equals the number.
* ``prefix`` the number starts with ``pattern`` (``""`` matches every number).
* ``regex``  Python ``re.fullmatch(pattern, number)``.

The URI template must start with ``sip:`` or ``sips:``, contain no spaces and
may use these placeholders (no other braces):

* ``{number}`` the dialled number, for every kind;
* ``{rest}`` the number after the prefix, for ``prefix`` rules;
* ``{0}`` the whole match and ``{1}``..``{N}`` the groups (an unmatched group
  gives ``""``), for ``regex`` rules.

Example: prefix ``9`` with ``sip:{rest}@trunk.example.com`` sends ``90123`` to
``sip:0123@trunk.example.com``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from domain.addressing import check_diallable, check_key
from domain.errors import InvalidValue
from domain.values import enum_member

__all__ = ["DialRule", "MatchKind", "UnknownRule"]

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
URI_TEMPLATE = re.compile(r"sips?:\S+")


class MatchKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


class UnknownRule(InvalidValue):
    """The dialplan has no rule of that name."""


@dataclass(frozen=True)
class DialRule:
    name: str
    kind: MatchKind
    pattern: str
    uri_template: str

    @classmethod
    def checked(cls, name: str, kind: MatchKind, pattern: str, uri_template: str) -> DialRule:
        if not isinstance(pattern, str):
            raise InvalidValue(f"a rule pattern is a string, got {pattern!r}")
        rule = cls(check_key(name), enum_member(MatchKind, kind), pattern, uri_template)
        if rule.kind is MatchKind.EXACT or (rule.kind is MatchKind.PREFIX and pattern):
            check_diallable(pattern)  # anything else could never match a diallable number
        allowed = rule._placeholders()  # compiles a regex pattern, so checks it too
        _check_template(uri_template, allowed)
        return rule

    def resolve(self, number: str) -> str | None:
        """The URI for ``number``, or None when this rule does not match it."""
        values = self._match(number)
        if values is None:
            return None
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], self.uri_template)

    def _match(self, number: str) -> dict[str, str] | None:
        if self.kind is MatchKind.EXACT:
            return {"number": number} if number == self.pattern else None
        if self.kind is MatchKind.PREFIX:
            if not number.startswith(self.pattern):
                return None
            return {"number": number, "rest": number[len(self.pattern) :]}
        found = _compiled(self.pattern).fullmatch(number)
        if found is None:
            return None
        groups = {str(i): found.group(i) or "" for i in range(found.re.groups + 1)}
        return {"number": number, **groups}

    def _placeholders(self) -> frozenset[str]:
        if self.kind is MatchKind.EXACT:
            return frozenset({"number"})
        if self.kind is MatchKind.PREFIX:
            return frozenset({"number", "rest"})
        groups = _compiled(self.pattern).groups
        return frozenset({"number", *(str(i) for i in range(groups + 1))})


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise InvalidValue(f"not a valid regular expression {pattern!r}: {error}") from None


def _check_template(template: str, allowed: frozenset[str]) -> None:
    if not isinstance(template, str) or not URI_TEMPLATE.fullmatch(template):
        raise InvalidValue(f"a URI template starts with sip: or sips:, got {template!r}")
    unknown = set(PLACEHOLDER.findall(template)) - allowed
    if unknown:
        raise InvalidValue(f"unknown placeholders {sorted(unknown)} in {template!r}")
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        raise InvalidValue(f"unbalanced braces in {template!r}")
