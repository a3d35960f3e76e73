"""Inbound numbers (DID -> destination) and outbound dialplans (number -> SIP URI).

Both are configuration aggregates: every change is an event, so the event
history is the audit trail of who routed what where, and when.

A dialplan tries its rules in order, first match wins; what a rule matches and
the URI it makes: domain/dial_rules.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.addressing import (
    CONFIG_NAMESPACE,
    DEFAULT_TENANT,
    DIALLABLE_PATTERN,
    Target,
    TargetKind,
    check_tenant,
    config_id,
)
from domain.dial_rules import DialRule, MatchKind, UnknownRule
from domain.errors import IllegalTransition, InvalidValue
from domain.limits import check_int
from domain.timed import TimedAggregate
from domain.values import non_empty, utc_instant

__all__ = ["MAX_RULES", "DialRule", "Dialplan", "MatchKind", "Number", "UnknownRule"]

DID = re.compile(r"\+?[0-9]{2,20}")
DESTINATION_KINDS = frozenset({TargetKind.IVR, TargetKind.QUEUE, TargetKind.NUMBER})
# Rules of one dialplan: every resolution may try them all in order.
MAX_RULES = 1000


def check_did(did: str) -> str:
    if not isinstance(did, str) or not DID.fullmatch(did):
        raise InvalidValue(f"a DID is 2-20 digits with an optional leading +, got {did!r}")
    return did


class Number(TimedAggregate):
    """One inbound number (DID) and where its calls go."""

    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        did: str
        label: str
        target_kind: str
        target_value: str | None
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class DestinationChanged(TimedAggregate.Event):
        class_version = 1
        target_kind: str
        target_value: str | None

        def apply(self, number: Number) -> None:
            number.destination = Target(TargetKind(self.target_kind), self.target_value)

    class Relabelled(TimedAggregate.Event):
        class_version = 1
        label: str

        def apply(self, number: Number) -> None:
            number.label = self.label

    class Deactivated(TimedAggregate.Event):
        class_version = 1

        def apply(self, number: Number) -> None:
            number.active = False

    class Activated(TimedAggregate.Event):
        class_version = 1

        def apply(self, number: Number) -> None:
            number.active = True

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        did: str,
        label: str,
        target_kind: str,
        target_value: str | None,
        occurred_at: datetime,
    ) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
        self.tenant = tenant
        self.did = did
        self.label = label
        self.destination = Target(TargetKind(target_kind), target_value)
        self.active = True
        self.created_at = occurred_at

    @staticmethod
    def id_for(did: str) -> UUID:
        """Not per tenant: a DID reaches one place (the SIP side routes by it), so
        one DID belongs to one tenant, whichever provisioned it first."""
        return uuid5(CONFIG_NAMESPACE, f"number:{check_did(did)}")

    @classmethod
    def create(
        cls, did: str, destination: Target, *, occurred_at: datetime, label: str = "",
        tenant: str = DEFAULT_TENANT,
    ) -> Number:
        checked = _destination(did, destination)
        return cls._create(
            cls.Created,
            id=cls.id_for(did),
            tenant=check_tenant(tenant),
            did=did,
            label=_label(label),
            target_kind=checked.kind.value,
            target_value=checked.value,
            occurred_at=utc_instant(occurred_at),
        )

    def route_to(self, destination: Target, occurred_at: datetime) -> None:
        checked = _destination(self.did, destination)
        if checked != self.destination:
            self._trigger(
                self.DestinationChanged,
                occurred_at,
                target_kind=checked.kind.value,
                target_value=checked.value,
            )

    def relabel(self, label: str, occurred_at: datetime) -> None:
        if _label(label) != self.label:
            self._trigger(self.Relabelled, occurred_at, label=label)

    def deactivate(self, occurred_at: datetime) -> None:
        if not self.active:
            raise IllegalTransition(f"number {self.did} is already inactive")
        self._trigger(self.Deactivated, occurred_at)

    def activate(self, occurred_at: datetime) -> None:
        if self.active:
            raise IllegalTransition(f"number {self.did} is already active")
        self._trigger(self.Activated, occurred_at)

    @property
    def route(self) -> Target | None:
        """Where a call to this number goes now; None while the number is inactive."""
        return self.destination if self.active else None


def _destination(did: str, destination: Target) -> Target:
    destination.check_kind(DESTINATION_KINDS, "a number's destination")
    if destination.kind is TargetKind.NUMBER and destination.value == did:
        raise InvalidValue(f"number {did} cannot forward to itself")
    return destination


def _label(label: str) -> str:
    if not isinstance(label, str) or len(label) > 200:
        raise InvalidValue(f"a label is a string of at most 200 characters, got {label!r}")
    return label


class Dialplan(TimedAggregate):
    """An ordered list of rules from dialled number to SIP URI."""

    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        key: str
        name: str
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class RuleAdded(TimedAggregate.Event):
        class_version = 1
        rule: str
        kind: str
        pattern: str
        uri_template: str
        position: int  # 0-based index the rule takes

        def apply(self, plan: Dialplan) -> None:
            rule = DialRule(self.rule, MatchKind(self.kind), self.pattern, self.uri_template)
            plan.rules.insert(self.position, rule)
            plan.rule_names.add(self.rule)

    class RuleChanged(TimedAggregate.Event):
        class_version = 1
        rule: str
        kind: str
        pattern: str
        uri_template: str

        def apply(self, plan: Dialplan) -> None:
            rule = DialRule(self.rule, MatchKind(self.kind), self.pattern, self.uri_template)
            plan.rules[plan.index_of(self.rule)] = rule

    class RuleMoved(TimedAggregate.Event):
        class_version = 1
        rule: str
        position: int

        def apply(self, plan: Dialplan) -> None:
            rule = plan.rules.pop(plan.index_of(self.rule))
            plan.rules.insert(self.position, rule)

    class RuleRemoved(TimedAggregate.Event):
        class_version = 1
        rule: str

        def apply(self, plan: Dialplan) -> None:
            del plan.rules[plan.index_of(self.rule)]
            plan.rule_names.discard(self.rule)

    def __init__(self, *, tenant: str = DEFAULT_TENANT, key: str, name: str,
                 occurred_at: datetime) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
        self.tenant = tenant
        self.key = key
        self.name = name
        self.rules: list[DialRule] = []
        # The names in `rules`, so that adding a rule checks for a taken name in
        # constant time: building a plan of n rules stays linear in n.
        self.rule_names: set[str] = set()
        self.created_at = occurred_at

    @staticmethod
    def id_for(key: str, tenant: str = DEFAULT_TENANT) -> UUID:
        return config_id("dialplan", key, tenant)

    @classmethod
    def create(cls, key: str, name: str, *, occurred_at: datetime,
               tenant: str = DEFAULT_TENANT) -> Dialplan:
        return cls._create(
            cls.Created,
            id=cls.id_for(key, tenant),
            tenant=check_tenant(tenant),
            key=key,
            name=non_empty("name", name),
            occurred_at=utc_instant(occurred_at),
        )

    def add_rule(self, rule: DialRule, occurred_at: datetime, position: int | None = None) -> None:
        """Insert ``rule`` at ``position`` (0-based; None: last)."""
        checked = DialRule.checked(rule.name, rule.kind, rule.pattern, rule.uri_template)
        if self.has_rule(checked.name):
            raise InvalidValue(f"dialplan {self.key} already has a rule {checked.name!r}")
        if len(self.rules) >= MAX_RULES:
            raise InvalidValue(f"dialplan {self.key} already has {MAX_RULES} rules, the most")
        index = len(self.rules) if position is None else self._position(position, extra=1)
        self._trigger(self.RuleAdded, occurred_at, **_rule_facts(checked), position=index)

    def change_rule(self, rule: DialRule, occurred_at: datetime) -> None:
        """Replace the rule of the same name, keeping its place."""
        checked = DialRule.checked(rule.name, rule.kind, rule.pattern, rule.uri_template)
        if self.rules[self.index_of(checked.name)] != checked:
            self._trigger(self.RuleChanged, occurred_at, **_rule_facts(checked))

    def move_rule(self, name: str, position: int, occurred_at: datetime) -> None:
        current = self.index_of(name)
        index = self._position(position, extra=0)
        if current != index:
            self._trigger(self.RuleMoved, occurred_at, rule=name, position=index)

    def remove_rule(self, name: str, occurred_at: datetime) -> None:
        self.index_of(name)
        self._trigger(self.RuleRemoved, occurred_at, rule=name)

    def resolve(self, number: str) -> str | None:
        """The URI of the first rule matching ``number``; None when none matches
        or the number is not diallable."""
        if not isinstance(number, str) or not DIALLABLE_PATTERN.fullmatch(number):
            return None
        return next((uri for r in self.rules if (uri := r.resolve(number)) is not None), None)

    def has_rule(self, name: str) -> bool:
        return name in self.rule_names

    def index_of(self, name: str) -> int:
        if name not in self.rule_names:
            raise UnknownRule(f"dialplan {self.key} has no rule {name!r}")
        for index, rule in enumerate(self.rules):
            if rule.name == name:
                return index
        raise UnknownRule(f"dialplan {self.key} has no rule {name!r}")

    def _position(self, position: int, extra: int) -> int:
        return check_int("position", position, 0, len(self.rules) - 1 + extra)


def _rule_facts(rule: DialRule) -> dict[str, str]:
    return {
        "rule": rule.name,
        "kind": rule.kind.value,
        "pattern": rule.pattern,
        "uri_template": rule.uri_template,
    }
