"""Every rule the domain enforces fails with a subclass of DomainError."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every domain rule violation."""


class IllegalTransition(DomainError):  # noqa: N818 - reads as the rule that was broken
    """A command that the aggregate's current state does not allow."""


class InvalidValue(DomainError):  # noqa: N818
    """A command argument that is malformed or out of range."""
