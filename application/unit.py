"""The unit of work of one call-centre command: the aggregates it read and changed.

A command handler asks the unit for aggregates by class and id; the unit
loads each at most once (from the repository's cache, fast-forwarded to the
store's latest version) as a private copy, so a refused command or a failed
save never touches the cache. A caller that keeps its own current copies (the
routing process's view) may hand them in instead, saving the reads. The
service then saves every changed aggregate of the unit in ONE transaction:
all or nothing, each aggregate guarded by optimistic concurrency on its
version.

A unit may act for one tenant: it then sees only that tenant's aggregates,
and one of another tenant is ``NotFound`` exactly as a missing one is (the
API's 404, never a 403 that would tell it exists). Units of the internal
processes (the router, the SIP side) act for no tenant and see everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from domain.addressing import DEFAULT_TENANT
from domain.errors import DomainError

__all__ = ["AlreadyExists", "NotFound", "Unit"]

A = TypeVar("A", bound=Aggregate)

# How errors name an aggregate class to a person.
KIND_NAMES = {"Agent": "agent", "Queue": "queue", "IvrMenu": "IVR menu",
              "Number": "number", "Dialplan": "dialplan"}


def kind_name(cls: type[Aggregate]) -> str:
    return KIND_NAMES.get(cls.__name__, cls.__name__.lower())


class NotFound(DomainError):  # noqa: N818 - reads as the answer it gives
    """The command names an aggregate that does not exist (or is of another kind)."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExists(DomainError):  # noqa: N818
    """A create command for a key that is already taken."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} already exists")
        self.kind = kind
        self.ident = ident


class Unit:
    def __init__(self, repository: Repository[UUID],
                 current: Iterable[Aggregate] = (), tenant: str | None = None) -> None:
        """``current``: private copies of aggregates as the caller last saw them,
        used instead of loading them (a stale one is refused when saved);
        ``tenant``: see only that tenant's aggregates (None: all)."""
        self._repository = repository
        self.tenant = tenant
        self._current = {aggregate.id: aggregate for aggregate in current}
        self._loaded: dict[UUID, Aggregate | None] = {}
        self._order: list[UUID] = []

    def get(self, cls: type[A], aggregate_id: UUID, ident: object = None) -> A:
        """The aggregate, or NotFound naming it by ``ident`` (default: its id)."""
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFound(kind_name(cls), aggregate_id if ident is None else ident)
        return found

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if it exists, is a ``cls`` and belongs to the unit's tenant."""
        found = self._stored(aggregate_id)
        if not isinstance(found, cls):
            return None
        return found if self.tenant is None or _tenant_of(found) == self.tenant else None

    def _stored(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id not in self._loaded:
            known = self._current.get(aggregate_id)
            self._loaded[aggregate_id] = known if known is not None else self._load(aggregate_id)
            self._order.append(aggregate_id)
        return self._loaded[aggregate_id]

    def add(self, aggregate: A) -> A:
        """Stage a new aggregate; AlreadyExists if its id is taken (in any tenant:
        only a DID can be, numbers being global; keys are per tenant)."""
        if self._stored(aggregate.id) is not None:
            raise AlreadyExists(kind_name(type(aggregate)), getattr(aggregate, "key", aggregate.id))
        self._loaded[aggregate.id] = aggregate
        return aggregate

    def changed(self) -> list[Aggregate]:
        """The aggregates with new events, in the order the command first touched them."""
        staged = (self._loaded[i] for i in self._order)
        return [a for a in staged if a is not None and a.pending_events]

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            found: Any = self._repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Aggregate) else None


def _tenant_of(aggregate: Aggregate) -> str:
    # Every call-centre aggregate has one (domain.addressing); "default" for others.
    return str(getattr(aggregate, "tenant", DEFAULT_TENANT))
