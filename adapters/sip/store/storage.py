"""The storage thread: applies queued domain commands to the call service in batches.

Why a thread of its own: the pjsua2 thread must never wait on PostgreSQL. The
SIP side only appends to an in-memory buffer; this thread takes the oldest
commands (FIFO, so per-call order holds), applies them inside one
``service.batch()`` (one transaction), and drops them from the buffer only once
that transaction committed.

Database outages. A failed save leaves the batch at the head of the buffer and
the thread retries it with exponential backoff while the buffer keeps growing;
calls stay up (the rule is ``adapters.sip.store.write_path.CALL_FACTS``, the retry
rule the centre link follows too, with its own figures). A failure while
committing is ambiguous: the transaction may have committed and only its
acknowledgement been lost. Before re-applying a batch whose attempt failed, the
thread reads from the store the last version of each call that attempt was
writing: the batch is one transaction, so if any call is past its pre-batch
version the whole batch is stored and it is dropped instead of applied twice
(re-applying is not harmless: hold, resume, hold would add events again).

Audit. A command carrying out an API command (``CallCommand.cause``: a supervisor
joining, a transfer) has the positions of the events it stored, known from the
recordings of the batch's save, handed to ``AuditLinks`` after the commit, which
adds them to that command's audit row on a thread of its own: never before the
events are stored, never delaying them.

Memory is bounded: past ``soft_limit`` buffered commands the thread reports
itself ``overloaded`` (the worker answers new INVITEs 503 and logs loudly);
commands of calls already in progress are still kept up to ``hard_limit``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol
from uuid import UUID

from adapters.sip.store.audit_links import AuditLinks
from adapters.sip.store.lost_calls import CallOwnership
from adapters.sip.store.write_path import (
    CALL_FACTS,
    INFRASTRUCTURE_ERRORS,
    Retry,
    RetryPolicy,
    StoreWriter,
    WriteAbandoned,
)
from application.call_control import AuditLink
from domain.call_commands import CallCommand, EndCall, InitiateCall
from domain.errors import DomainError

__all__ = ["INFRASTRUCTURE_ERRORS", "BatchingCallCommands", "StorageStats", "StorageThread"]

log = logging.getLogger(__name__)


class BatchingCallCommands(Protocol):
    """application.calls.CallService: commands, group commit, and its recorder."""

    recorder: Any
    name: str  # the application's: the store audit rows name positions in

    def handle(self, command: CallCommand) -> None: ...
    def batch(self) -> AbstractContextManager[Any]: ...


@dataclass
class StorageStats:
    applied: int = 0
    skipped: int = 0
    batches: int = 0
    failures: int = 0
    duplicates_dropped: int = 0
    overflow_dropped: int = 0


class StorageThread(StoreWriter[BatchingCallCommands]):
    """Owns the command buffer and the thread that drains it into the store."""

    def __init__(
        self,
        service_factory: Callable[[], BatchingCallCommands],
        *,
        batch_size: int = 500,
        soft_limit: int = 100_000,
        hard_limit: int = 200_000,
        max_backoff: float = 5.0,
        idle_wait: float = 1.0,
        ownership: CallOwnership | None = None,
        retry: RetryPolicy = CALL_FACTS,
    ) -> None:
        super().__init__(service_factory, replace(retry, max_backoff=max_backoff),
                         "dialtone-storage")
        # Which calls this worker holds, claimed before they are stored and let
        # go after they are ended (see adapters.sip.store.lost_calls).
        self._ownership = ownership
        self._buffer: deque[CallCommand] = deque()
        self._cond = threading.Condition()
        self._batch_size = batch_size
        self._soft_limit = soft_limit
        self._hard_limit = hard_limit
        self._idle_wait = idle_wait
        self._stopping = False
        self._overload_logged = False
        self._in_flight = 0
        self._written: dict[UUID, int] = {}
        self.stats = StorageStats()
        self.healthy = True
        # Positions of stored events to add to their API command's audit row.
        self.links = AuditLinks(self._store_connection)

    # The SIP side.

    def put(self, command: CallCommand) -> None:
        with self._cond:
            if len(self._buffer) >= self._hard_limit:
                self.stats.overflow_dropped += 1
                log.error("COMMAND BUFFER FULL (%d): dropping %r", len(self._buffer), command)
                return
            self._buffer.append(command)
            self._cond.notify()
        self._log_overload_once()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    @property
    def overloaded(self) -> bool:
        return self.pending >= self._soft_limit

    # Lifecycle.

    def stop(self, timeout: float = 10.0) -> bool:
        """Drain what can be stored within ``timeout``; True when nothing is left."""
        deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.links.stop(max(0.5, deadline - time.monotonic()))
        if self._ownership is not None:
            self._ownership.close()
        left = self.pending
        if left:
            log.error("storage stopped with %d commands not stored", left)
        return left == 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued command has been stored (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._buffer and not self._in_flight:
                    return True
            time.sleep(0.02)
        return False

    # The storage thread.

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None or not self._store(batch):
                return

    def _next_batch(self) -> list[CallCommand] | None:
        with self._cond:
            while not self._buffer:
                if self._stopping:
                    return None
                self._cond.wait(self._idle_wait)
            batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            self._in_flight = len(batch)
            return batch

    def _store(self, batch: list[CallCommand]) -> bool:
        """Apply ``batch`` until it is stored exactly once; only then drop it.
        False: stopped in an outage, the batch left buffered (stop() reports it)
        and the thread ends instead of retrying the store until the process exits."""
        self._written = {}
        try:
            self._retrying(lambda: self._store_once(batch), self._pause)
        except WriteAbandoned:
            return False
        except INFRASTRUCTURE_ERRORS:
            # Given up on conflicts only (an outage is waited out): a stale cached
            # call, evicted by the service and reloaded by each retry, still refused.
            log.error("batch of %d commands keeps conflicting; dropped", len(batch))
        self._drop_head(len(batch))
        return True

    def _store_once(self, batch: list[CallCommand]) -> None:
        """One attempt: unless an earlier one committed after all, apply the batch."""
        if self._already_stored():
            self.stats.duplicates_dropped += len(batch)
            log.warning("batch of %d commands was stored by an attempt reported as "
                        "failed; not re-applied", len(batch))
            return
        self._apply(batch)

    def _pause(self, retry: Retry, error: BaseException) -> bool:
        """Before a retry: an outage is logged and waited out (a conflict is
        retried at once); False when the thread is stopping."""
        if not retry.outage:
            return True
        self._on_failure(error, self._in_flight, retry.delay)
        return not self._stopping_now()

    def _apply(self, batch: list[CallCommand]) -> None:
        service = self._connected()
        applied = skipped = 0
        if self._ownership is not None:
            self._ownership.claim(c.call_id for c in batch if isinstance(c, InitiateCall))
        caused: list[tuple[AuditLink, UUID, range]] = []
        with service.batch() as staged:
            for command in batch:
                before = _version(staged, command.call_id)
                if self._apply_one(service, command):
                    applied += 1
                    if isinstance(command.cause, AuditLink):
                        made = _made(staged, command.call_id, before)
                        caused.append((command.cause, command.call_id, made))
                else:
                    skipped += 1
            # What this attempt is about to write: each call's version before
            # it, so that a failed attempt can later be checked for a commit.
            self._written = {call.id: call.version - len(call.pending_events)
                             for call in staged.calls if call.pending_events}
        # Committed: the audit rows of the API commands behind some of it may now
        # name these events (on the links' thread).
        if caused:
            try:
                self._link(service.name, caused, staged.recordings)
            except Exception:
                # Stored is stored: a link that cannot even be handed over is lost, logged.
                log.exception("audit links of a stored batch not handed over")
        if self._ownership is not None:
            self._ownership.release(c.call_id for c in batch if isinstance(c, EndCall))
        self.stats.applied += applied
        self.stats.skipped += skipped
        self.stats.batches += 1
        if not self.healthy:
            log.warning("event store reachable again; %d commands buffered", self.pending)
        self.healthy = True

    def _link(self, store: str, caused: list[tuple[AuditLink, UUID, range]],
              recordings: list[Any]) -> None:
        """Hand each API command's share of the batch's positions to the links."""
        position = {(r.domain_event.originator_id, r.domain_event.originator_version):
                    r.notification.id for r in recordings}
        found: dict[AuditLink, list[int]] = {}
        for link, call_id, versions in caused:
            found.setdefault(link, []).extend(
                position[call_id, v] for v in versions if (call_id, v) in position)
        for link, positions in found.items():
            self.links.add(link, store, positions)

    def _store_connection(self) -> AbstractContextManager[Any]:
        """A connection of the call store's pool (the links' thread borrows it)."""
        assert self._service is not None  # links come only after a batch was stored
        conn: AbstractContextManager[Any] = self._service.recorder.datastore.get_connection()
        return conn

    def _already_stored(self) -> bool:
        """Did an attempt reported as failed commit after all? (See the module docstring.)"""
        if not self._written or self._service is None:
            return False
        recorder = self._service.recorder
        for call_id, before in self._written.items():
            last = recorder.select_events(call_id, desc=True, limit=1)
            if last and last[0].originator_version > before:
                return True  # one transaction: one call written means all were
        return False

    def _apply_one(self, service: BatchingCallCommands, command: CallCommand) -> bool:
        try:
            service.handle(command)
        except INFRASTRUCTURE_ERRORS:
            raise  # abort the whole batch: it is retried
        except DomainError as error:
            log.warning("command refused by the domain: %r: %s", command, error,
                        extra={"call_id": str(command.call_id)})
            return False
        except Exception:
            # A bug in one command must not block every later call's history.
            log.exception("command failed: %r", command, extra={"call_id": str(command.call_id)})
            return False
        return True

    def _on_failure(self, error: BaseException, size: int, backoff: float) -> None:
        self.stats.failures += 1
        if self.healthy:
            log.error("event store unavailable (%s: %s); buffering commands, retrying",
                      type(error).__name__, error)
        else:
            log.warning("event store still unavailable (%s); %d in batch, %d buffered",
                        type(error).__name__, size, self.pending)
        self.healthy = False
        with self._cond:
            self._cond.wait(backoff)

    def _stopping_now(self) -> bool:
        with self._cond:
            return self._stopping

    def _drop_head(self, count: int) -> None:
        with self._cond:
            for _ in range(count):
                self._buffer.popleft()
            self._in_flight = 0
            self._overload_logged = self._overload_logged and len(self._buffer) >= self._soft_limit

    def _log_overload_once(self) -> None:
        if self._overload_logged or not self.overloaded:
            return
        self._overload_logged = True
        log.error("COMMAND BUFFER ABOVE %d: the event store is not keeping up; "
                  "new calls are refused until it drains", self._soft_limit)

    def snapshot(self) -> Iterator[CallCommand]:
        """The buffered commands, oldest first (for diagnostics and tests)."""
        with self._cond:
            return iter(list(self._buffer))


def _version(staged: Any, call_id: UUID) -> int | None:
    """The call's version in the batch so far; None when the batch has not loaded it."""
    call = staged.get(call_id)
    return None if call is None else int(call.version)


def _made(staged: Any, call_id: UUID, before: int | None) -> range:
    """The versions of the events the command just applied added to the call."""
    call = staged.get(call_id)
    if call is None:
        return range(0)
    if before is None:  # loaded by this command: every pending event is its own
        before = call.version - len(call.pending_events)
    return range(before + 1, call.version + 1)
