"""Linking the events a worker stored for an API command to that command's audit row.

A call-control command (supervise, transfer...) is recorded by the API in
``audit_log``, but its events are stored later by the B2BUA worker holding the
call (``application.call_control``). Once the storage thread has committed
them, it hands their store positions here, with the ``AuditLink`` naming the
row; this thread adds them to the row's ``positions`` (store: ``CallService``),
as the API does for the events it stores itself, so the call's timeline and
``GET /v1/audit?position=`` name the actor and request id of those events too.

Why a thread of its own, after the commit: the link must never hold up or
endanger a call's events. A failed or late link only loses that link (logged);
the events are stored already. The row may not exist yet (the API writes it
once the worker has answered, and a transfer's ``Transferred`` can be stored
before that), so a link that finds no row is retried every ``retry_s`` for up
to ``wait_s``. What a link does not survive: the worker stopping or dying
between the commit and the update (docs/security.md, audit section).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from application.call_control import AuditLink

log = logging.getLogger(__name__)

LINK_WAIT_S = 30.0  # the API writes its row within its reply timeout (3 s) of asking
RETRY_S = 0.25

# Only the row of that command on that call (the control id is new per request);
# positions kept sorted and unique (a link retried after an unacknowledged commit
# adds nothing twice); never onto a row already naming another store.
_LINK = """
UPDATE audit_log
SET positions = ARRAY(SELECT DISTINCT p FROM unnest(positions || %(positions)s::bigint[]) AS p
                      ORDER BY p),
    event_store = %(store)s
WHERE aggregate_id = %(call_id)s AND request_id = %(request_id)s
  AND detail->>'control' = %(control_id)s
  AND (event_store IS NULL OR event_store = %(store)s)
"""

Connect = Callable[[], AbstractContextManager[Any]]  # a psycopg connection (autocommit)


@dataclass
class _Job:
    link: AuditLink
    store: str  # the application whose log the positions are in
    positions: list[int]
    deadline: float
    failed: bool = False  # an error was logged for it already


class AuditLinks:
    """The linking thread of one worker; started on the first link."""

    def __init__(self, connect: Connect, *, wait_s: float = LINK_WAIT_S,
                 retry_s: float = RETRY_S) -> None:
        self._connect = connect
        self._wait_s = wait_s
        self._retry_s = retry_s
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.linked = 0
        self.lost = 0

    def add(self, link: AuditLink, store: str, positions: list[int]) -> None:
        """Add ``positions`` (in ``store``'s log) to ``link``'s row soon; returns at
        once (any thread)."""
        if not positions:
            return
        self._jobs.put(_Job(link, store, sorted(positions), time.monotonic() + self._wait_s))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dialtone-audit-links",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Make the links that can be made now, then stop (waiting at most ``timeout``)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        waiting: list[_Job] = []
        stopping = False
        while not stopping:  # the round after the stop request is the last
            try:
                job = self._jobs.get(timeout=self._retry_s if waiting else None)
                while True:  # take every job queued by now
                    if job is None:
                        stopping = True
                    else:
                        waiting.append(job)
                    job = self._jobs.get_nowait()
            except queue.Empty:
                pass
            waiting = [job for job in waiting if not self._attempt(job)]
        if waiting:
            self.lost += len(waiting)
            log.warning("stopping with %d audit links not made (their rows were not there)",
                        len(waiting))

    def _attempt(self, job: _Job) -> bool:
        """Try ``job`` once; True when it is done with (made, or given up)."""
        try:
            with self._connect() as conn, conn.transaction():
                found = conn.execute(_LINK, {
                    "positions": job.positions, "store": job.store,
                    "call_id": job.link.call_id, "request_id": job.link.request_id,
                    "control_id": job.link.control_id}).rowcount
        except Exception as error:  # a link never takes the worker down
            found = 0
            if not job.failed:
                job.failed = True
                log.warning("audit link for request %s failed (%s: %s); retrying",
                            job.link.request_id, type(error).__name__, error)
        if found:
            self.linked += 1
            return True
        if time.monotonic() >= job.deadline:
            self.lost += 1
            log.error("audit link for request %s (control %s) on call %s not made within "
                      "%.0f s (%s): positions %s", job.link.request_id, job.link.control_id,
                      job.link.call_id, self._wait_s,
                      "errors" if job.failed else "no such row", job.positions)
            return True
        return False
