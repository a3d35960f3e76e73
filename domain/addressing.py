"""How configuration aggregates are named, and where a call can be sent.

Configuration aggregates (agents, queues, IVR menus, dialplans) are named by a
stable *key* chosen by an operator (``sales``, ``alice``, ``1001``); their
aggregate id is ``uuid5`` of the kind, the tenant and the key, so any process can
find an aggregate from its key without a lookup table and a second ``create``
with the same key collides in the event store instead of making a twin. Two
tenants may use the same key: their ids differ. Tenant ``default`` keeps the
ids it had before tenants existed (``uuid5("kind:key")``); other tenants' ids
are ``uuid5("kind:tenant:key")``, which no key can produce (keys hold no ``:``).

Every aggregate carries the tenant it belongs to (``tenant``), set by its
created event and never changed. Events stored before tenants existed have no
``tenant`` attribute: the created events declare it last with the default
``default``, so old events read back as belonging to ``default`` and keep
their CloudEvents type (``....v1``: a new optional data field).

A ``Target`` is one place a call can go: a queue, an IVR menu, a dialled
number, a recording, or the two menu actions "repeat" and "hang up". Each user
(IVR options, number destinations, queue overflow) allows a subset of kinds.
Events store a target flattened as two plain fields, ``target_kind`` and
``target_value``, so the default event transcoder needs no extra type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid5

from domain.errors import InvalidValue
from domain.values import enum_member

__all__ = [
    "DEFAULT_TENANT",
    "Target",
    "TargetKind",
    "check_key",
    "check_tenant",
    "config_id",
]

# Fixed forever: changing it would give stored aggregates different ids.
CONFIG_NAMESPACE = UUID("0b7f3d1e-5f0e-4c8e-9d6a-2a6f1f3c9e47")

# The tenant of everything made before tenants existed, and of a single-tenant install.
DEFAULT_TENANT = "default"

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# What a phone or trunk can dial: digits, DTMF star and hash, optional leading +.
DIALLABLE_PATTERN = re.compile(r"\+?[0-9*#]{1,32}")
# A recording's (or music's) file name below its media directory, as the workers look
# it up (adapters.media.files.tenant_file) and the API checks it: segments split by
# "/", none empty, each starting with a letter or a digit (so none is "." or ".."),
# and no dot followed by a dot. The length (at most 128) is checked apart.
RECORDING_PATTERN = re.compile(r"[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?"
                               r"(?:/[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?)*")


def check_key(key: str) -> str:
    """Keys are lowercase slugs so ``Sales`` and ``sales`` cannot name two aggregates."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise InvalidValue(f"key must match {KEY_PATTERN.pattern}, got {key!r}")
    return key


def check_tenant(tenant: str) -> str:
    """Tenants are slugs like keys (the identities' ``tenants.id``)."""
    if not isinstance(tenant, str) or not KEY_PATTERN.fullmatch(tenant):
        raise InvalidValue(f"tenant must match {KEY_PATTERN.pattern}, got {tenant!r}")
    return tenant


def config_id(kind: str, key: str, tenant: str = DEFAULT_TENANT) -> UUID:
    """The aggregate id of configuration aggregate ``kind`` named ``key`` in ``tenant``."""
    if check_tenant(tenant) == DEFAULT_TENANT:
        return uuid5(CONFIG_NAMESPACE, f"{kind}:{check_key(key)}")
    return uuid5(CONFIG_NAMESPACE, f"{kind}:{tenant}:{check_key(key)}")


def check_diallable(number: str) -> str:
    if not isinstance(number, str) or not DIALLABLE_PATTERN.fullmatch(number):
        raise InvalidValue(f"not a diallable number: {number!r}")
    return number


class TargetKind(StrEnum):
    QUEUE = "queue"  # value: the queue's aggregate id
    IVR = "ivr"  # value: the IVR menu's aggregate id (a submenu, from a menu)
    NUMBER = "number"  # value: a diallable number, resolved by the dialplan
    RECORDING = "recording"  # value: the recording's name
    REPEAT = "repeat"  # no value: play the current menu again
    HANGUP = "hangup"  # no value


VALUELESS = frozenset({TargetKind.REPEAT, TargetKind.HANGUP})
BY_ID = frozenset({TargetKind.QUEUE, TargetKind.IVR})


@dataclass(frozen=True)
class Target:
    """Where a call goes. Build with the named constructors or ``parse``."""

    kind: TargetKind
    value: str | None = None

    @classmethod
    def parse(cls, kind: str, value: str | None) -> Target:
        """A checked target from untrusted parts (an API body or a stored event)."""
        checked = enum_member(TargetKind, kind)
        if checked in VALUELESS:
            if value is not None:
                raise InvalidValue(f"a {checked} target takes no value, got {value!r}")
            return cls(checked)
        return cls(checked, _checked_value(checked, value))

    @classmethod
    def queue(cls, queue_id: UUID) -> Target:
        return cls(TargetKind.QUEUE, str(queue_id))

    @classmethod
    def ivr(cls, menu_id: UUID) -> Target:
        return cls(TargetKind.IVR, str(menu_id))

    @classmethod
    def number(cls, number: str) -> Target:
        return cls(TargetKind.NUMBER, check_diallable(number))

    @classmethod
    def recording(cls, name: str) -> Target:
        return cls.parse(TargetKind.RECORDING, name)

    @classmethod
    def repeat(cls) -> Target:
        return cls(TargetKind.REPEAT)

    @classmethod
    def hangup(cls) -> Target:
        return cls(TargetKind.HANGUP)

    @property
    def aggregate_id(self) -> UUID:
        """The id of the queue or IVR menu this target names."""
        if self.kind not in BY_ID or self.value is None:
            raise InvalidValue(f"a {self.kind} target names no aggregate")
        return UUID(self.value)

    def check_kind(self, allowed: frozenset[TargetKind], where: str) -> Target:
        if self.kind not in allowed:
            kinds = ", ".join(sorted(allowed))
            raise InvalidValue(f"{where} accepts targets of kind {kinds}, not {self.kind}")
        return self


def _checked_value(kind: TargetKind, value: str | None) -> str:
    if value is None:
        raise InvalidValue(f"a {kind} target needs a value")
    if kind in BY_ID:
        try:
            return str(UUID(value))
        except (ValueError, TypeError, AttributeError):
            raise InvalidValue(f"a {kind} target needs an aggregate id, got {value!r}") from None
    if kind is TargetKind.NUMBER:
        return check_diallable(value)
    if len(value) > 128 or not RECORDING_PATTERN.fullmatch(value):
        raise InvalidValue(f"not a recording name: {value!r}")
    return value
