"""Which worker holds which call, and ending the calls a dead worker left open.

A worker killed (SIGKILL, abort, power) sends no BYE and stores no ``Ended``:
without this its calls read "answered" for ever. So each worker records the
calls it holds in ``sip_worker_calls`` (call id -> worker identity, the
``host:port`` it serves SIP on): its storage thread claims a call *before*
storing the batch that initiates it and lets it go once the batch that ends it
is stored, so the table always covers every open call of the worker (a stale
row, for a call whose Initiated was never stored or that is ended already, is
harmless: it is dropped when met).

``end_lost_calls(dsn, worker)`` ends every call still claimed by ``worker``
with cause ``worker_lost`` on the system's side (answered calls stay
``answered``, as the domain requires; the others end ``failed``) and drops the
claims. A worker runs it for its own identity at start, before it takes an
INVITE (a restarted worker ends what its previous incarnation left); a
supervisor (``dialtone up``) may run it when it sees a worker die. It must not
be run for a worker that is alive: it would end that worker's live calls.

The table is made by migration 0013 (migrations/schema/0013_sip_worker_calls.sql),
like every other table: a worker never runs DDL. On a database the migrations
were not applied to, a claim fails with PostgreSQL's "undefined table": the
storage thread keeps the batch and retries (calls stay up, nothing is lost),
and the log says to apply them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from application.calls import CallService
from domain.call import Disposition, HangupSide
from domain.errors import DomainError

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
UNMIGRATED = ("sip_worker_calls is missing: apply the migrations (`dialtone migrate`) "
              "before starting B2BUA workers")


def worker_identity(host: str, port: int) -> str:
    """How a worker is named in ``sip_worker_calls`` (and in its heartbeat)."""
    return f"{host}:{port}"


class CallOwnership:
    """The claims of one worker, written by its storage thread (its own connection)."""

    def __init__(self, dsn: str, worker: str) -> None:
        self.dsn = dsn
        self.worker = worker
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def claim(self, call_ids: Iterable[UUID]) -> None:
        ids = list(call_ids)
        if ids:
            with _migrated():
                self._connection().execute(
                    "INSERT INTO sip_worker_calls (call_id, worker) "
                    "SELECT unnest(%s::uuid[]), %s "
                    "ON CONFLICT (call_id) DO UPDATE SET worker = EXCLUDED.worker",
                    (ids, self.worker))

    def release(self, call_ids: Iterable[UUID]) -> None:
        ids = list(call_ids)
        if ids:
            with _migrated():
                self._connection().execute(
                    "DELETE FROM sip_worker_calls WHERE call_id = ANY(%s) AND worker = %s",
                    (ids, self.worker))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
        return self._conn


@contextmanager
def _migrated() -> Iterator[None]:
    """Say what to do when the table is missing (the error itself is kept: the
    storage thread retries the batch, as for any store failure)."""
    try:
        yield
    except psycopg.errors.UndefinedTable:
        log.error(UNMIGRATED)
        raise


def end_lost_calls(dsn: str, worker: str, service: CallService, *,
                   cause: str = WORKER_LOST) -> list[UUID]:
    """End every call ``worker`` (``host:port``) left open; the ids ended.

    ``service``: a CallService on the same store. Only for a worker that is
    not running (see the module docstring)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn, _migrated():
        claimed = [row[0] for row in conn.execute(
            "SELECT call_id FROM sip_worker_calls WHERE worker = %s", (worker,))]
        if not claimed:
            return []
        ended = [call_id for call_id in claimed if _end(service, call_id, cause)]
        conn.execute("DELETE FROM sip_worker_calls WHERE call_id = ANY(%s) AND worker = %s",
                     (claimed, worker))
    if ended:
        log.warning("worker %s was lost with %d calls open: ended (%s)", worker, len(ended),
                    cause)
    return ended


def _end(service: CallService, call_id: UUID, cause: str) -> bool:
    try:
        call = service.get_call(call_id)
    except DomainError:
        return False  # its Initiated was never stored: nothing to end
    if call.ended_at is not None:
        return False
    answered = call.was_answered
    try:
        service.end_call(call_id, disposition=Disposition.ANSWERED if answered
                         else Disposition.FAILED, hangup_cause=cause,
                         hangup_side=HangupSide.SYSTEM, sip_status=200 if answered else None,
                         occurred_at=datetime.now(UTC))
    except DomainError as error:
        log.warning("call %s left by a lost worker cannot be ended: %s", call_id, error,
                    extra={"call_id": str(call_id)})
        return False
    return True

