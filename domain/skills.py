"""Skills: a name and a level, held by agents and required by queues.

Levels run from 1 (knows a little) to 100 (expert). A queue requirement
``{"spanish": 50}`` is met by an agent whose ``spanish`` level is at least 50.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.errors import InvalidValue
from domain.limits import check_int

__all__ = [
    "MAX_LEVEL", "MAX_SKILLS", "MIN_LEVEL", "check_level", "check_room", "check_skill",
    "check_skills", "meets", "score",
]

MIN_LEVEL = 1
MAX_LEVEL = 100
# Skills one agent holds, or one queue requires: routing scores every available
# agent against a queue's requirements on each offer, so both sets stay small.
MAX_SKILLS = 100
SKILL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def check_skill(skill: str) -> str:
    if not isinstance(skill, str) or not SKILL_PATTERN.fullmatch(skill):
        raise InvalidValue(f"skill must match {SKILL_PATTERN.pattern}, got {skill!r}")
    return skill


def check_level(level: int) -> int:
    return check_int("skill level", level, MIN_LEVEL, MAX_LEVEL)


def check_skills(skills: Mapping[str, int]) -> dict[str, int]:
    """A checked plain-dict copy, safe to put in an event."""
    if len(skills) > MAX_SKILLS:
        raise InvalidValue(f"at most {MAX_SKILLS} skills, got {len(skills)}")
    return {check_skill(name): check_level(level) for name, level in skills.items()}


def check_room(held: Mapping[str, int], skill: str) -> None:
    """``skill`` may be added to ``held`` without going over MAX_SKILLS."""
    if skill not in held and len(held) >= MAX_SKILLS:
        raise InvalidValue(f"at most {MAX_SKILLS} skills; remove one before adding {skill!r}")


def meets(held: Mapping[str, int], required: Mapping[str, int]) -> bool:
    """True when every required skill is held at or above its minimum level."""
    return all(held.get(skill, 0) >= level for skill, level in required.items())


def score(held: Mapping[str, int], required: Mapping[str, int]) -> int:
    """How well ``held`` covers ``required``: the sum of held levels of the required skills."""
    return sum(held.get(skill, 0) for skill in required)
