"""Inbound numbers (DID -> destination) and dialplans (number -> SIP URI):
resolution, rule order, placeholders, validation and the audit events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.application import Application

from domain.addressing import Target
from domain.errors import IllegalTransition, InvalidValue
from domain.ivr import IvrMenu
from domain.numbers import Dialplan, DialRule, MatchKind, Number, UnknownRule
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
DID = "+15551230000"
MAIN_MENU = Target.ivr(IvrMenu.id_for("main"))
SALES = Target.queue(Queue.id_for("sales"))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(name: str, kind: str, pattern: str, uri: str) -> DialRule:
    return DialRule.checked(name, MatchKind(kind), pattern, uri)


# -- numbers ------------------------------------------------------------------------


def test_a_number_routes_to_its_destination_and_its_id_is_the_did() -> None:
    number = Number.create(DID, MAIN_MENU, occurred_at=T0, label="Main line")
    assert number.id == Number.id_for(DID)
    assert number.route == MAIN_MENU
    assert number.label == "Main line"


def test_changing_the_destination_is_an_event_and_the_same_one_is_not() -> None:
    number = Number.create(DID, MAIN_MENU, occurred_at=T0)
    number.route_to(SALES, at(1))
    number.route_to(SALES, at(2))
    number.relabel("Sales direct", at(3))
    number.relabel("Sales direct", at(4))
    assert [type(e) for e in number.collect_events()] == [
        Number.Created,
        Number.DestinationChanged,
        Number.Relabelled,
    ]
    assert number.route == SALES


def test_an_inactive_number_routes_nowhere_until_activated() -> None:
    number = Number.create(DID, SALES, occurred_at=T0)
    number.deactivate(at(1))
    assert number.route is None
    with pytest.raises(IllegalTransition):
        number.deactivate(at(2))
    number.activate(at(3))
    assert number.route == SALES
    with pytest.raises(IllegalTransition):
        number.activate(at(4))


@pytest.mark.parametrize(
    ("did", "destination"),
    [
        ("15551230000x", SALES),  # not a DID
        ("1", SALES),  # too short
        (DID, Target.hangup()),  # not a destination kind
        (DID, Target.recording("closed")),
        (DID, Target.number(DID)),  # forwarding to itself
    ],
)
def test_a_number_refuses_bad_dids_and_destinations(did: str, destination: Target) -> None:
    with pytest.raises(InvalidValue):
        Number.create(did, destination, occurred_at=T0)


def test_a_number_may_forward_to_another_number() -> None:
    number = Number.create(DID, Target.number("+15559990000"), occurred_at=T0)
    assert number.route == Target.number("+15559990000")


# -- dialplans ------------------------------------------------------------------------


def outbound() -> Dialplan:
    plan = Dialplan.create("outbound", "Outbound", occurred_at=T0)
    plan.add_rule(rule("emergency", "exact", "112", "sip:112@emergency.example.com"), T0)
    plan.add_rule(rule("internal", "regex", r"(2)(\d{3})", "sip:{0}@pbx.example.com;ext={2}"), T0)
    plan.add_rule(rule("external", "prefix", "9", "sip:{rest}@trunk.example.com"), T0)
    plan.add_rule(rule("catch-all", "prefix", "", "sip:{number}@fallback.example.com"), T0)
    return plan


@pytest.mark.parametrize(
    ("number", "uri"),
    [
        ("112", "sip:112@emergency.example.com"),
        ("2001", "sip:2001@pbx.example.com;ext=001"),
        ("900441234", "sip:00441234@trunk.example.com"),
        ("1120", "sip:1120@fallback.example.com"),  # exact means exact
        ("20011", "sip:20011@fallback.example.com"),  # regex must match the whole number
        ("+4420", "sip:+4420@fallback.example.com"),
    ],
)
def test_resolve_takes_the_first_matching_rule(number: str, uri: str) -> None:
    assert outbound().resolve(number) == uri


@pytest.mark.parametrize("number", ["", "alice", "9@evil.example.com", "9" * 33])
def test_only_diallable_numbers_resolve(number: str) -> None:
    assert outbound().resolve(number) is None


def test_no_matching_rule_resolves_to_none() -> None:
    plan = Dialplan.create("internal", "Internal", occurred_at=T0)
    plan.add_rule(rule("ext", "prefix", "2", "sip:{number}@pbx.example.com"), T0)
    assert plan.resolve("3001") is None


def test_an_unmatched_regex_group_gives_an_empty_string() -> None:
    plan = Dialplan.create("p", "P", occurred_at=T0)
    plan.add_rule(rule("opt", "regex", r"(\+)?(\d+)", "sip:{1}{2}@gw.example.com"), T0)
    assert plan.resolve("123") == "sip:123@gw.example.com"
    assert plan.resolve("+123") == "sip:+123@gw.example.com"


def test_rule_order_decides_and_can_be_changed() -> None:
    plan = outbound()
    plan.add_rule(rule("uk", "prefix", "900", "sip:{rest}@uk.example.com"), at(1), position=2)
    assert plan.resolve("9004412") == "sip:4412@uk.example.com"
    plan.move_rule("uk", 3, at(2))
    assert [r.name for r in plan.rules] == ["emergency", "internal", "external", "uk", "catch-all"]
    assert plan.resolve("9004412") == "sip:004412@trunk.example.com"


def test_change_and_remove_rules_are_events() -> None:
    plan = outbound()
    plan.collect_events()
    plan.change_rule(rule("external", "prefix", "0", "sip:{rest}@trunk.example.com"), at(1))
    plan.change_rule(rule("external", "prefix", "0", "sip:{rest}@trunk.example.com"), at(2))
    plan.move_rule("external", 2, at(3))  # already there
    plan.remove_rule("emergency", at(4))
    assert [type(e) for e in plan.collect_events()] == [Dialplan.RuleChanged, Dialplan.RuleRemoved]
    assert plan.resolve("0123") == "sip:123@trunk.example.com"
    assert plan.resolve("112") == "sip:112@fallback.example.com"


def test_rule_commands_refuse_unknown_and_duplicate_names_and_bad_positions() -> None:
    plan = outbound()
    with pytest.raises(UnknownRule):
        plan.remove_rule("nope", at(1))
    with pytest.raises(UnknownRule):
        plan.move_rule("nope", 0, at(1))
    with pytest.raises(InvalidValue):
        plan.add_rule(rule("external", "prefix", "8", "sip:{rest}@x.example.com"), at(1))
    with pytest.raises(InvalidValue):
        plan.add_rule(rule("new", "prefix", "8", "sip:{rest}@x.example.com"), at(1), position=9)
    with pytest.raises(InvalidValue):
        plan.move_rule("external", 4, at(1))


@pytest.mark.parametrize(
    ("kind", "pattern", "uri"),
    [
        ("exact", "112", "http://example.com/{number}"),  # not a SIP URI
        ("exact", "112", "sip:{rest}@x.example.com"),  # {rest} is for prefix rules
        ("prefix", "9", "sip:{1}@x.example.com"),  # groups are for regex rules
        ("regex", r"(\d+)", "sip:{2}@x.example.com"),  # only one group
        ("regex", r"(\d+", "sip:{number}@x.example.com"),  # not a regex
        ("prefix", "9", "sip:{number.__class__}@x.example.com"),
        ("prefix", "9", "sip:{rest}}@x.example.com"),
        ("prefix", "9", "sip:{rest} @x.example.com"),
        ("exact", "abc", "sip:{number}@x.example.com"),  # could never match
        ("wildcard", "9", "sip:{number}@x.example.com"),
    ],
)
def test_bad_rules_are_refused(kind: str, pattern: str, uri: str) -> None:
    with pytest.raises(InvalidValue):
        DialRule.checked("r", kind, pattern, uri)  # type: ignore[arg-type]


def test_stored_events_rebuild_equal_numbers_and_dialplans() -> None:
    number = Number.create(DID, MAIN_MENU, occurred_at=T0)
    number.route_to(SALES, at(1))
    number.deactivate(at(2))
    plan = outbound()
    plan.move_rule("catch-all", 0, at(3))
    app: Application[UUID] = Application()
    app.save(number, plan)
    assert app.repository.get(number.id) == number
    assert app.repository.get(plan.id) == plan
    assert app.repository.get(plan.id).resolve("112") == "sip:112@fallback.example.com"


# -- targets (where numbers, menus and overflows send calls) --------------------------


def test_a_target_parsed_from_parts_equals_the_built_one() -> None:
    queue_id = Queue.id_for("sales")
    assert Target.parse("queue", str(queue_id).upper()) == Target.queue(queue_id)
    assert Target.parse("hangup", None) == Target.hangup()
    assert Target.parse("number", "*72") == Target.number("*72")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("queue", "sales"),  # queues are named by id
        ("queue", None),
        ("hangup", "now"),
        ("number", "call me"),
        ("recording", "../etc/passwd"),
        ("voicemail", "2001"),
    ],
)
def test_malformed_targets_are_refused(kind: str, value: str | None) -> None:
    with pytest.raises(InvalidValue):
        Target.parse(kind, value)


def test_only_queue_and_ivr_targets_name_an_aggregate() -> None:
    assert SALES.aggregate_id == Queue.id_for("sales")
    with pytest.raises(InvalidValue):
        _ = Target.number("2001").aggregate_id
