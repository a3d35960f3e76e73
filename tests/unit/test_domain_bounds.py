"""Domain operations stay linear in their input, and every collection an
aggregate holds is bounded (issue 16: a 20,000-rule dialplan took 17 s to
build, an agent with 200,000 skills was accepted).

Linearity is checked by counting work (name comparisons), never by the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import uuid4

import pytest

from domain.agent import Agent
from domain.errors import InvalidValue
from domain.numbers import MAX_RULES, Dialplan, DialRule, MatchKind
from domain.queue import MAX_MEMBERS, Queue
from domain.routing import RoutingStrategy
from domain.skills import MAX_SKILLS

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


class CountingName(str):
    """A rule name that counts how often it is compared for equality."""

    __slots__ = ()
    comparisons: ClassVar[int] = 0

    def __eq__(self, other: object) -> bool:
        CountingName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def exact(name: str, n: int) -> DialRule:
    return DialRule(name, MatchKind.EXACT, f"{1000 + n}", "sip:{number}@trunk.example.com")


def test_building_a_dialplan_compares_names_a_constant_number_of_times_per_rule() -> None:
    plan = Dialplan.create("out", "Outbound", occurred_at=T0)
    CountingName.comparisons = 0
    for n in range(MAX_RULES):
        plan.add_rule(exact(CountingName(f"r{n}"), n), T0)
    # A scan of the rules per add would compare ~n^2/2 = 500,000 times.
    assert CountingName.comparisons <= 4 * MAX_RULES
    assert len(plan.rules) == MAX_RULES
    assert plan.resolve("1999") == "sip:1999@trunk.example.com"


def test_rule_names_follow_adds_moves_and_removals() -> None:
    plan = Dialplan.create("out", "Outbound", occurred_at=T0)
    for n in range(3):
        plan.add_rule(exact(f"r{n}", n), T0)
    plan.move_rule("r2", 0, T0)
    plan.remove_rule("r1", T0)
    assert [r.name for r in plan.rules] == ["r2", "r0"]
    assert plan.has_rule("r2")
    assert not plan.has_rule("r1")
    plan.add_rule(exact("r1", 1), T0, position=1)
    assert [r.name for r in plan.rules] == ["r2", "r1", "r0"]
    with pytest.raises(InvalidValue, match="already has a rule"):
        plan.add_rule(exact("r0", 0), T0)


def test_a_dialplan_holds_at_most_max_rules() -> None:
    plan = Dialplan.create("out", "Outbound", occurred_at=T0)
    for n in range(MAX_RULES):
        plan.add_rule(exact(f"r{n}", n), T0)
    with pytest.raises(InvalidValue, match=f"{MAX_RULES} rules"):
        plan.add_rule(exact("one-more", 0), T0)


def skills(count: int) -> dict[str, int]:
    return {f"s{n}": 50 for n in range(count)}


def test_an_agent_holds_at_most_max_skills() -> None:
    agent = Agent.create("alice", "Alice", skills(MAX_SKILLS), occurred_at=T0)
    agent.set_skill("s0", 60, T0)  # changing a held skill is always fine
    with pytest.raises(InvalidValue, match=f"at most {MAX_SKILLS} skills"):
        agent.set_skill("one-more", 1, T0)
    with pytest.raises(InvalidValue, match=f"at most {MAX_SKILLS} skills"):
        Agent.create("bob", "Bob", skills(MAX_SKILLS + 1), occurred_at=T0)


def test_a_queue_requires_at_most_max_skills_and_has_at_most_max_members() -> None:
    queue = Queue.create("sales", "Sales", RoutingStrategy.SKILLS_BASED, occurred_at=T0)
    for skill, level in skills(MAX_SKILLS).items():
        queue.require_skill(skill, level, T0)
    with pytest.raises(InvalidValue, match=f"at most {MAX_SKILLS} skills"):
        queue.require_skill("one-more", 1, T0)
    for _ in range(MAX_MEMBERS):
        queue.add_member(uuid4(), 0, T0)
    with pytest.raises(InvalidValue, match=f"{MAX_MEMBERS} members"):
        queue.add_member(uuid4(), 0, T0)
