"""The identities' values: roles, users, service accounts, keys, and the
errors a login or a credential check ends with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.addressing import check_tenant
from domain.errors import InvalidValue


class Role(StrEnum):
    """What a person or a machine is there to do; permissions follow from it."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    INTEGRATOR = "integrator"
    AGENT = "agent"


DEFAULT_TENANT = "default"
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True)
class User:
    id: UUID
    tenant: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    device: str | None = None  # the SIP URI a supervisor's monitor/whisper/barge rings
    agent: str | None = None  # the key of the agent (same tenant) a user of role agent is


@dataclass(frozen=True)
class ServiceAccount:
    id: UUID
    tenant: str
    name: str
    role: Role
    disabled: bool


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed: never its secret nor its hash."""

    key_id: str
    account: str
    tenant: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class ActorState:
    """What a per-request check needs about an actor: may it act, with which role."""

    tenant: str
    role: Role
    active: bool
    agent_key: str | None = None  # a user's own agent (users of role agent act on it only)


class IdentityError(Exception):
    """Base of the errors of this package."""


class AuthenticationFailed(IdentityError):  # noqa: N818 - reads as the outcome
    """Wrong or unknown credentials; never says which part was wrong."""


class LockedOut(IdentityError):  # noqa: N818 - reads as the outcome
    """Too many failed logins for this username; retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Conflict(IdentityError):  # noqa: N818 - reads as the outcome
    """The name is taken (username, service account in its tenant)."""


# A username or service account name, wherever it is made (the API, the command line):
# one rule, so a person added by `dialtone users add` is one the API's routes can name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class InvalidName(IdentityError):  # noqa: N818 - reads as the outcome
    """A username or account name outside NAME_PATTERN."""


def is_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def check_name(name: str, what: str) -> None:
    if not is_name(name):
        raise InvalidName(f"a {what} is 1-64 letters, digits and . _ @ -, starting with a "
                          f"letter or digit: {name!r} is not")


def check_tenant_id(tenant: str) -> None:
    try:
        check_tenant(tenant)
    except InvalidValue:
        raise InvalidName(f"a tenant is a lowercase slug (letters, digits, . _ -), as agents' "
                          f"and queues' keys: {tenant!r} is not") from None


class WeakPassword(IdentityError):  # noqa: N818 - reads as the outcome
    """A password shorter than MIN_PASSWORD_LENGTH."""
