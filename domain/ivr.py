"""The IvrMenu aggregate: a voice menu, and the pure decision of what a key press does.

A menu plays ``prompt``, then waits ``timeout_s`` for one DTMF key (``0``-``9``,
``*``, ``#``, ``A``-``D``). Each key may map to an action: a queue, a number, a submenu
(another IVR menu), ``repeat`` (play this menu again) or ``hangup``. A key with
no action is *invalid*; no key within the timeout is a *timeout*.

``decide(digit, attempt)`` numbers attempts from 1. After an invalid key or a
timeout on attempt ``a``, the menu is replayed (attempt ``a + 1``) while
``a <= max_retries``; otherwise retries are exhausted and the menu's
``default_action`` runs. So a menu is heard at most ``1 + max_retries`` times
unless the caller asks for ``repeat``, which never counts as a failure.

Configuration changes are events (the audit trail); setting a value to what it
already is emits nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.addressing import (
    DEFAULT_TENANT,
    Target,
    TargetKind,
    check_tenant,
    config_id,
)
from domain.errors import InvalidValue
from domain.limits import check_int, check_seconds
from domain.timed import TimedAggregate
from domain.values import non_empty, utc_instant

__all__ = ["IvrDecision", "IvrMenu", "IvrOutcome"]

DIGIT = re.compile(r"[0-9*#A-D]")  # the sixteen DTMF keys
OPTION_KINDS = frozenset(
    {TargetKind.QUEUE, TargetKind.NUMBER, TargetKind.IVR, TargetKind.REPEAT, TargetKind.HANGUP}
)
# Replaying forever is never a sensible end of a menu.
DEFAULT_KINDS = OPTION_KINDS - {TargetKind.REPEAT}
MAX_RETRIES = 10


class UnknownOption(InvalidValue):
    """The menu has no action for that key (a missing thing, not a bad value)."""


class IvrOutcome(StrEnum):
    SELECTED = "selected"  # a valid key: its action
    INVALID = "invalid"  # a key with no action: replay
    TIMEOUT = "timeout"  # no key in time: replay
    EXHAUSTED = "exhausted"  # too many invalid keys or timeouts: the default action


@dataclass(frozen=True)
class IvrDecision:
    outcome: IvrOutcome
    action: Target  # what to do now; a REPEAT target means play this menu again
    next_attempt: int  # the attempt number of the next key, if the menu is played again


class IvrMenu(TimedAggregate):
    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        key: str
        name: str
        prompt: str
        timeout_s: float
        max_retries: int
        default_kind: str
        default_value: str | None
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    class PromptChanged(TimedAggregate.Event):
        class_version = 1
        prompt: str

        def apply(self, menu: IvrMenu) -> None:
            menu.prompt = self.prompt

    class OptionSet(TimedAggregate.Event):
        class_version = 1
        digit: str
        target_kind: str
        target_value: str | None

        def apply(self, menu: IvrMenu) -> None:
            menu.options[self.digit] = Target(TargetKind(self.target_kind), self.target_value)

    class OptionRemoved(TimedAggregate.Event):
        class_version = 1
        digit: str

        def apply(self, menu: IvrMenu) -> None:
            del menu.options[self.digit]

    class TimeoutChanged(TimedAggregate.Event):
        class_version = 1
        timeout_s: float

        def apply(self, menu: IvrMenu) -> None:
            menu.timeout_s = self.timeout_s

    class RetriesChanged(TimedAggregate.Event):
        class_version = 1
        max_retries: int

        def apply(self, menu: IvrMenu) -> None:
            menu.max_retries = self.max_retries

    class DefaultActionChanged(TimedAggregate.Event):
        class_version = 1
        target_kind: str
        target_value: str | None

        def apply(self, menu: IvrMenu) -> None:
            menu.default_action = Target(TargetKind(self.target_kind), self.target_value)

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        key: str,
        name: str,
        prompt: str,
        timeout_s: float,
        max_retries: int,
        default_kind: str,
        default_value: str | None,
        occurred_at: datetime,
    ) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
        self.tenant = tenant
        self.key = key
        self.name = name
        self.prompt = prompt
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.default_action = Target(TargetKind(default_kind), default_value)
        self.options: dict[str, Target] = {}
        self.created_at = occurred_at

    @staticmethod
    def id_for(key: str, tenant: str = DEFAULT_TENANT) -> UUID:
        return config_id("ivr", key, tenant)

    @classmethod
    def create(
        cls,
        key: str,
        name: str,
        prompt: str,
        *,
        occurred_at: datetime,
        timeout_s: float = 5.0,
        max_retries: int = 2,
        default_action: Target | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> IvrMenu:
        """A menu of ``tenant`` with no options yet; ``default_action`` defaults to hang up."""
        menu_id = cls.id_for(key, tenant)
        default = _default(menu_id, default_action or Target.hangup())
        return cls._create(
            cls.Created,
            id=menu_id,
            tenant=check_tenant(tenant),
            key=key,
            name=non_empty("name", name),
            prompt=non_empty("prompt", prompt),
            timeout_s=_timeout(timeout_s),
            max_retries=_retries(max_retries),
            default_kind=default.kind.value,
            default_value=default.value,
            occurred_at=utc_instant(occurred_at),
        )

    def set_prompt(self, prompt: str, occurred_at: datetime) -> None:
        if non_empty("prompt", prompt) != self.prompt:
            self._trigger(self.PromptChanged, occurred_at, prompt=prompt)

    def set_option(self, digit: str, action: Target, occurred_at: datetime) -> None:
        checked = _option(self.id, action)
        if self.options.get(_digit(digit)) != checked:
            self._trigger(
                self.OptionSet,
                occurred_at,
                digit=digit,
                target_kind=checked.kind.value,
                target_value=checked.value,
            )

    def remove_option(self, digit: str, occurred_at: datetime) -> None:
        if _digit(digit) not in self.options:
            raise UnknownOption(f"menu {self.key} has no option for {digit!r}")
        self._trigger(self.OptionRemoved, occurred_at, digit=digit)

    def set_timeout(self, timeout_s: float, occurred_at: datetime) -> None:
        seconds = _timeout(timeout_s)
        if seconds != self.timeout_s:
            self._trigger(self.TimeoutChanged, occurred_at, timeout_s=seconds)

    def set_max_retries(self, max_retries: int, occurred_at: datetime) -> None:
        if _retries(max_retries) != self.max_retries:
            self._trigger(self.RetriesChanged, occurred_at, max_retries=max_retries)

    def set_default_action(self, action: Target, occurred_at: datetime) -> None:
        checked = _default(self.id, action)
        if checked != self.default_action:
            self._trigger(
                self.DefaultActionChanged,
                occurred_at,
                target_kind=checked.kind.value,
                target_value=checked.value,
            )

    def decide(self, digit: str | None, attempt: int) -> IvrDecision:
        """What the caller's key (None: timeout) on ``attempt`` (from 1) leads to."""
        check_int("attempt", attempt, 1, MAX_RETRIES + 1)
        action = None if digit is None else self.options.get(_digit(digit))
        if action is not None:
            next_attempt = attempt if action.kind is TargetKind.REPEAT else 1
            return IvrDecision(IvrOutcome.SELECTED, action, next_attempt)
        if attempt > self.max_retries:
            return IvrDecision(IvrOutcome.EXHAUSTED, self.default_action, attempt + 1)
        failure = IvrOutcome.TIMEOUT if digit is None else IvrOutcome.INVALID
        return IvrDecision(failure, Target.repeat(), attempt + 1)


def _digit(digit: str) -> str:
    if not isinstance(digit, str) or not DIGIT.fullmatch(digit):
        raise InvalidValue(f"a menu key is one DTMF key (0-9, *, #, A-D), got {digit!r}")
    return digit


def _option(menu_id: UUID, action: Target) -> Target:
    _check_not_self(menu_id, action.check_kind(OPTION_KINDS, "an IVR option"))
    return action


def _default(menu_id: UUID, action: Target) -> Target:
    _check_not_self(menu_id, action.check_kind(DEFAULT_KINDS, "an IVR default action"))
    return action


def _check_not_self(menu_id: UUID, action: Target) -> None:
    # A submenu that is this menu would loop outside the retry count: use repeat.
    if action.kind is TargetKind.IVR and action.aggregate_id == menu_id:
        raise InvalidValue("an IVR menu cannot be its own submenu; use a repeat action")


def _timeout(seconds: float) -> float:
    return check_seconds("timeout_s", seconds, 1.0, 60.0)


def _retries(max_retries: int) -> int:
    return check_int("max_retries", max_retries, 0, MAX_RETRIES)
