"""The worker's link to the call centre: CallCentreService commands on a thread.

Call-centre commands (enqueue, accept or miss an offer, abandon, end the agent's
call...) differ from the Call commands of the storage thread: the domain may
refuse them (the router timed the offer out a moment before the agent's 200 OK
arrived) and the session must hear the answer to act on it (hang the agent up
and keep the caller waiting). So they run one at a time, in order, on this
thread, and each one's outcome is posted back to the pjsua2 thread.

Retries follow the worker's one write rule (``adapters.sip.store.write_path``, the
storage thread's too) with the figures of ``CENTRE_COMMANDS``: a database
outage is retried with backoff for up to ``max_outage_s`` (calls keep their
audio meanwhile); past that the command fails and its callback hears the
error. So is ``ConcurrentChange``, after short random pauses. A command nobody
waits on (no callback: the agent's call ended, a caller abandoned, an offer
missed) is a fact rather than a question: it waits the outage out, as the
storage thread's call facts do. Given up after 30 s, it was lost, and an agent
whose call ended during the outage stayed on that call for good.

The commands themselves stay closures over ``CallCentreService`` methods (not
values like ``domain.call_commands``): each returns what the session acts on
(the queue position, the call's next step), the queue and agent aggregates
decide through ``application.callflow``'s functions over several aggregates at
once, and the service's own retry of a conflicting unit of work is per command.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from adapters.sip.store.write_path import (
    CENTRE_COMMANDS,
    INFRASTRUCTURE_ERRORS,
    Retry,
    RetryPolicy,
    StoreWriter,
    WriteAbandoned,
    WriteOutcome,
)
from application.callcentre import CallCentreService, ConcurrentChange
from domain.errors import DomainError

log = logging.getLogger(__name__)

T = TypeVar("T")
Post = Callable[[Callable[[], None]], None]


# The name the sessions import it by.
Outcome = WriteOutcome


# The submitter's log context (its call's ids) goes with the job: the job's lines
# and its outcome's, back on the pjsua2 thread, carry them.
Job = tuple[Callable[[CallCentreService], Any], Callable[[Outcome[Any]], None] | None, str,
            contextvars.Context]


class CentreLink(StoreWriter[CallCentreService]):
    def __init__(self, service_factory: Callable[[], CallCentreService], post: Post, *,
                 max_outage_s: float | None = None, retry: RetryPolicy = CENTRE_COMMANDS,
                 ) -> None:
        if max_outage_s is not None:
            retry = replace(retry, max_outage_s=max_outage_s)
        super().__init__(service_factory, retry, "dialtone-centre-link")
        self._facts = replace(retry, max_outage_s=None)  # the retry of unheard commands
        self._post = post
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._stopping = threading.Event()
        self.failures = 0

    def stop(self, timeout: float = 10.0) -> None:
        """Run what is queued (within ``timeout``), then stop; a command still
        waiting out an outage then is given up (the worker is going)."""
        self._jobs.put(None)
        self._thread.join(timeout)
        self._stopping.set()
        self._thread.join(1.0)
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
            outcome = context.run(self._execute, command, what, done is None)
            if done is not None:
                self._post(functools.partial(context.run, _deliver(done, outcome)))

    def _execute(self, command: Callable[[CallCentreService], Any], what: str,
                 fact: bool) -> Outcome[Any]:
        def pause(retry: Retry, error: BaseException) -> bool:
            if retry.outage:
                log.warning("%s: store unreachable (%s); retrying", what, error)
            return not self._stopping.wait(retry.delay)

        try:
            return Outcome(value=self._retrying(lambda: command(self._connected()), pause,
                                                self._facts if fact else None))
        except Exception as error:
            return self._given_up(what, error)

    def _given_up(self, what: str, error: Exception) -> Outcome[Any]:
        """The outcome of a command not (or no longer) retried; called in its except."""
        if isinstance(error, WriteAbandoned):
            self.failures += 1
            log.error("%s dropped: the worker stopped while the call centre store was "
                      "unreachable", what)
            return Outcome(error=error)
        if isinstance(error, ConcurrentChange):
            return Outcome(error=error)
        if isinstance(error, DomainError):
            log.info("%s refused: %s", what, error)
            return Outcome(error=error)
        self.failures += 1
        if isinstance(error, INFRASTRUCTURE_ERRORS):
            log.error("%s failed: the call centre store is unreachable (%s)", what, error)
            return Outcome(error=RuntimeError(f"store unreachable: {error}"))
        log.exception("%s failed", what)
        return Outcome(error=error)


def _deliver(done: Callable[[Outcome[Any]], None], outcome: Outcome[Any]) -> Callable[[], None]:
    return lambda: done(outcome)
