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

The table is created on first use (under an advisory lock: workers start
together), not by a migration: it belongs to the SIP workers alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from application.calls import CallService
from domain.call import Disposition, HangupSide
from domain.errors import DomainError

log = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
_LOCK_KEY = 0x5D1A7_0CA1  # pg_advisory_xact_lock key for the DDL below
_DDL = """
CREATE TABLE IF NOT EXISTS sip_worker_calls (
    call_id uuid PRIMARY KEY,
    worker text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sip_worker_calls_worker ON sip_worker_calls (worker);
"""


def worker_identity(host: str, port: int) -> str:
    """How a worker is named in ``sip_worker_calls`` (and in its heartbeat)."""
    return f"{host}:{port}"


def ensure_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_DDL)


class CallOwnership:
    """The claims of one worker, written by its storage thread (its own connection)."""

    def __init__(self, dsn: str, worker: str) -> None:
        self.dsn = dsn
        self.worker = worker
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def claim(self, call_ids: Iterable[UUID]) -> None:
        ids = list(call_ids)
        if ids:
            self._connection().execute(
                "INSERT INTO sip_worker_calls (call_id, worker) SELECT unnest(%s::uuid[]), %s "
                "ON CONFLICT (call_id) DO UPDATE SET worker = EXCLUDED.worker", (ids, self.worker))

    def release(self, call_ids: Iterable[UUID]) -> None:
        ids = list(call_ids)
        if ids:
            self._connection().execute(
                "DELETE FROM sip_worker_calls WHERE call_id = ANY(%s) AND worker = %s",
                (ids, self.worker))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
            try:
                ensure_table(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn


def end_lost_calls(dsn: str, worker: str, service: CallService, *,
                   cause: str = WORKER_LOST) -> list[UUID]:
    """End every call ``worker`` (``host:port``) left open; the ids ended.

    ``service``: a CallService on the same store. Only for a worker that is
    not running (see the module docstring)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        ensure_table(conn)
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

