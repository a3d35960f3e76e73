"""The worker's link to the call centre: CallCentreService commands on a thread.

Call-centre commands (enqueue, accept or miss an offer, abandon, end the agent's
call...) differ from the Call commands of the storage thread: the domain may
refuse them (the router timed the offer out a moment before the agent's 200 OK
arrived) and the session must hear the answer to act on it (hang the agent up
and keep the caller waiting). So they run one at a time, in order, on this
thread, and each one's outcome is posted back to the pjsua2 thread.

A database outage is retried with backoff for up to ``max_outage_s`` (calls
keep their audio meanwhile); past that the command fails and its callback
hears the error. So is ``ConcurrentChange``: a queue is one aggregate that
every worker and the routing process write, so a burst of callers arriving
together can exhaust the service's own retries; a short random pause spreads
the writers out (measured: 10 workers enqueueing at the same instant).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from adapters.sip.storage import INFRASTRUCTURE_ERRORS
from application.callcentre import CallCentreService, ConcurrentChange
from domain.errors import DomainError

log = logging.getLogger(__name__)

T = TypeVar("T")
Post = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A command's result, or the error that refused it."""

    value: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# The submitter's log context (its call's ids) goes with the job: the job's lines
# and its outcome's, back on the pjsua2 thread, carry them.
Job = tuple[Callable[[CallCentreService], Any], Callable[[Outcome[Any]], None] | None, str,
            contextvars.Context]


class CentreLink:
    def __init__(self, service_factory: Callable[[], CallCentreService], post: Post, *,
                 max_outage_s: float = 30.0) -> None:
        self._factory = service_factory
        self._service: CallCentreService | None = None
        self._post = post
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._max_outage_s = max_outage_s
        self._thread = threading.Thread(target=self._run, name="dialtone-centre-link",
                                        daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Run what is queued (within ``timeout``), then stop."""
        self._jobs.put(None)
        self._thread.join(timeout)
        if self._service is not None:
            self._service.close()

    def submit(self, what: str, command: Callable[[CallCentreService], T],
               done: Callable[[Outcome[T]], None] | None = None) -> None:
        """Run ``command`` on the service; ``done`` then runs on the pjsua2 thread."""
        self._jobs.put((command, done, what, contextvars.copy_context()))

    def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL ``NOTIFY channel, payload``, in turn with the commands."""
        def send(service: CallCentreService) -> None:
            datastore = service.recorder.datastore  # type: ignore[attr-defined]  # PostgreSQL recorder
            with datastore.get_connection() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
        self.submit(f"notify {channel}", send)

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            command, done, what, context = job
            outcome = context.run(self._execute, command, what)
            if done is not None:
                self._post(functools.partial(context.run, _deliver(done, outcome)))

    def _execute(self, command: Callable[[CallCentreService], Any], what: str) -> Outcome[Any]:
        deadline = time.monotonic() + self._max_outage_s
        backoff = 0.1
        while True:
            try:
                return Outcome(value=command(self._connected()))
            except ConcurrentChange as busy:
                if time.monotonic() > deadline:
                    return Outcome(error=busy)
                time.sleep(random.uniform(0.002, 0.02))  # noqa: S311 - jitter, not secrets
            except DomainError as refused:
                log.info("%s refused: %s", what, refused)
                return Outcome(error=refused)
            except INFRASTRUCTURE_ERRORS as error:
                if time.monotonic() + backoff > deadline:
                    self.failures += 1
                    log.error("%s failed: the call centre store is unreachable (%s)", what, error)
                    return Outcome(error=RuntimeError(f"store unreachable: {error}"))
                log.warning("%s: store unreachable (%s); retrying", what, error)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception as error:
                self.failures += 1
                log.exception("%s failed", what)
                return Outcome(error=error)

    def _connected(self) -> CallCentreService:
        if self._service is None:
            self._service = self._factory()
        return self._service


def _deliver(done: Callable[[Outcome[Any]], None], outcome: Outcome[Any]) -> Callable[[], None]:
    return lambda: done(outcome)
