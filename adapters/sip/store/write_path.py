"""A worker's writes to the store: the one retry rule, and what a write comes to.

A B2BUA worker writes on two lanes, each a thread of its own so that the pjsua2
thread never waits on PostgreSQL:
- call facts (``domain.call_commands`` values, adapters/sip/store/storage.py): buffered,
  batched, one transaction per batch (group commit), checked for an ambiguous
  commit, kept through any outage (the buffer is bounded), never answered;
- call-centre commands (adapters/sip/store/centre_link.py): one at a time, in order,
  each with an ``WriteOutcome`` posted back to the session, which acts on a
  refusal (the router timed an offer out just before the agent answered).
The lanes stay apart on purpose: a queue's commands must not wait behind a
batch of call facts held by an outage, and call facts must not be refused.
They write two applications (two event tables, no transaction across them), so
a fact both know of is written once, on the lane that may refuse it, and the
other follows the committed outcome: a call entering a queue is the queue's
``Enqueue`` (call-centre lane); the call's ``Queued`` is emitted by the flow
only once that outcome says the queue took it (``application.b2bua.front``).

Both are a ``StoreWriter`` (a thread that alone writes one store for the worker,
connecting at its first write) and retry every write through its one loop,
``StoreWriter._retrying``, by one rule, ``RetryPolicy``, each with its own figures:
- the store unreachable (``INFRASTRUCTURE_ERRORS``): wait, doubling from
  ``first_backoff`` up to ``max_backoff``; give up once that wait would end past
  ``max_outage_s`` after the first attempt (``None``: never, call facts are kept);
- a conflict (one of the lane's ``conflicts``: another writer changed the same
  aggregate first): retry after a pause drawn from ``conflict_pause``, at most
  ``max_conflicts`` times and within ``max_outage_s``;
- anything else (the domain refused it, a bug): never retried.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError

from application.callcentre import ConcurrentChange

__all__ = [
    "CALL_FACTS",
    "CENTRE_COMMANDS",
    "INFRASTRUCTURE_ERRORS",
    "Attempts",
    "Retry",
    "RetryPolicy",
    "StoreWriter",
    "WriteAbandoned",
    "WriteOutcome",
]

T = TypeVar("T")
S = TypeVar("S")

# Errors that mean "the database did not take this write (maybe)": retry later.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    PersistenceError, psycopg.Error, OSError, TimeoutError,
)


@dataclass(frozen=True)
class WriteOutcome(Generic[T]):
    """A command's result, or the error that refused it."""

    value: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Retry:
    """Try again after ``delay`` seconds; ``outage``: the store was unreachable
    (not a conflict), which the lanes log and report in their health."""

    delay: float
    outage: bool


@dataclass(frozen=True)
class RetryPolicy:
    """How one lane retries a write (see the module docstring)."""

    conflicts: tuple[type[BaseException], ...]
    first_backoff: float = 0.1
    max_backoff: float = 5.0
    max_outage_s: float | None = None
    max_conflicts: int | None = None
    conflict_pause: tuple[float, float] = (0.0, 0.0)

    def attempts(self, clock: Callable[[], float] = time.monotonic,
                 draw: Callable[[float, float], float] = random.uniform) -> Attempts:
        """The retries of one write, starting now."""
        return Attempts(self, clock, draw)


@dataclass
class Attempts:
    """One write under a ``RetryPolicy``: after each failure, whether and when to retry."""

    policy: RetryPolicy
    clock: Callable[[], float]
    draw: Callable[[float, float], float]
    conflicts: int = 0
    backoff: float = field(init=False)
    deadline: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.backoff = self.policy.first_backoff
        limit = self.policy.max_outage_s
        self.deadline = None if limit is None else self.clock() + limit

    def after(self, error: BaseException) -> Retry | None:
        """The retry of the write that just failed with ``error``, or None: give up
        (a conflict or an outage past its limits) or do not retry (anything else)."""
        policy = self.policy
        if isinstance(error, policy.conflicts):
            self.conflicts += 1
            if policy.max_conflicts is not None and self.conflicts >= policy.max_conflicts:
                return None
            if self._past(0.0):
                return None
            return Retry(self.draw(*policy.conflict_pause), outage=False)
        if isinstance(error, INFRASTRUCTURE_ERRORS):
            delay = self.backoff
            if self._past(delay):
                return None
            self.backoff = min(delay * 2, policy.max_backoff)
            return Retry(delay, outage=True)
        return None

    def _past(self, wait: float) -> bool:
        return self.deadline is not None and self.clock() + wait > self.deadline


# Call facts: an outage is waited out (the facts stay buffered, calls stay up);
# a conflict is a stale cached call the service has evicted: retried at once,
# three times at most (then the batch is dropped, logged).
CALL_FACTS = RetryPolicy(conflicts=(IntegrityError,), max_conflicts=3)

# Call-centre commands: a queue is one aggregate every worker and the routing
# process write, so a burst of callers arriving together can exhaust the
# service's own retries (ConcurrentChange); a short random pause spreads the
# writers out (measured: 10 workers enqueueing at the same instant). An outage
# is waited out for 30 s (calls keep their audio), then the command fails.
CENTRE_COMMANDS = RetryPolicy(conflicts=(ConcurrentChange,), max_backoff=2.0,
                              max_outage_s=30.0, conflict_pause=(0.002, 0.02))


class WriteAbandoned(Exception):  # noqa: N818 - reads as what happened
    """A write given up while retrying because its writer is stopping."""


class StoreWriter(Generic[S]):
    """A thread that alone writes one store for the worker through ``S`` (an
    application service), made by ``service_factory`` at the first write so that
    a worker starts while the store is down. Subclasses run their loop in
    ``_run`` and every write through ``_retrying``."""

    def __init__(self, service_factory: Callable[[], S], retry: RetryPolicy,
                 thread_name: str) -> None:
        self._factory = service_factory
        self._service: S | None = None
        self._retry = retry
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        raise NotImplementedError

    def _connected(self) -> S:
        if self._service is None:
            self._service = self._factory()
        return self._service

    def _retrying(self, write: Callable[[], T],
                  pause: Callable[[Retry, BaseException], bool],
                  policy: RetryPolicy | None = None) -> T:
        """``write()``'s result, retried by the policy (the writer's, or ``policy``):
        after a failure it may retry, ``pause`` waits the retry's delay (False: the
        writer is stopping, ``WriteAbandoned``); an error it gives up on, or never
        retries, is raised."""
        attempts = (policy or self._retry).attempts()
        while True:
            try:
                return write()
            except Exception as error:
                retry = attempts.after(error)
                if retry is None:
                    raise
                if not pause(retry, error):
                    raise WriteAbandoned from error
