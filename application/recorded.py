"""The store positions of the events one command stored, collected for its audit row.

The API's `audited` dependency opens a collection around each command route
(`collecting()`); `CallCentreService._notify`, eventsourcing's hook called after
every `save()` with the recordings it made, adds their notification ids: the
store positions by which the relay, the topics' `sequence` and the projections
know the events. Each application numbers its own notification log, so the
collection also names the store (the application's name). The audit row then
names exactly the events that request produced, with its actor and request id,
and the events themselves stay unchanged: they are the published, versioned
facts, and the audit log (admins only) stays the one place that says who asked.

A context variable carries the collection: the command runs in the threadpool
(`run_in_threadpool` copies the request's context), and a save made outside any
collection (SIP workers, the router, the CLI) finds none and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Recording


@dataclass
class Collected:
    """The events one command stored: their store and positions, in order."""

    store: str | None = None  # the application's name; None while nothing was stored
    positions: list[int] = field(default_factory=list)


_current: ContextVar[Collected | None] = ContextVar("recorded_events", default=None)


@contextmanager
def collecting() -> Iterator[Collected]:
    """What the saves inside the block store (filled as they are saved)."""
    found = Collected()
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)


def note(store: str, recordings: Iterable[Recording[Any]]) -> None:
    """Add these recordings of application `store` to the open collection, if any."""
    found = _current.get()
    if found is None:
        return
    if found.store not in (None, store):
        # One audit row names one store's positions; no command saves in two.
        raise RuntimeError(f"one command saved to {found.store} and {store}")
    found.store = store
    found.positions.extend(r.notification.id for r in recordings)
