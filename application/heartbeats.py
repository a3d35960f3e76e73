"""Heartbeats: each long-running process says, in service_heartbeats, that it is alive.

A process owns a ``Heartbeat`` and calls ``tick()`` from its main loop (a
memory write, nothing more). A daemon thread upserts the process's row every
``interval_s`` seconds, but only if the loop ticked since the previous write:
a process that died *or* whose loop hangs stops beating, and its row goes
stale. ``stop()`` marks the row stopped, so health can tell a clean stop from
a crash. The row records its own interval, so whoever reads it judges
staleness without knowing each process's configuration.

Writing a heartbeat must never harm the process: while the database is away
each failed write is logged once and the thread carries on (reconnecting on
the next beat).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

INTERVAL_ENV = "DIALTONE_HEARTBEAT_INTERVAL_S"
DEFAULT_INTERVAL_S = 5.0
CONNECT_TIMEOUT_S = 2

_BEAT = """
INSERT INTO service_heartbeats
    (service, instance, pid, host, started_at, beat_at, interval_s, stopped_at, detail)
VALUES (%(service)s, %(instance)s, %(pid)s, %(host)s, %(started_at)s, now(), %(interval_s)s,
        NULL, %(detail)s)
ON CONFLICT (service, instance) DO UPDATE SET
    pid = EXCLUDED.pid, host = EXCLUDED.host, started_at = EXCLUDED.started_at,
    beat_at = now(), interval_s = EXCLUDED.interval_s, stopped_at = NULL, detail = EXCLUDED.detail
"""
# Only this incarnation's row: a successor on the same instance may already beat.
_STOPPED = """
UPDATE service_heartbeats SET stopped_at = now(), beat_at = now(), detail = %(detail)s
WHERE service = %(service)s AND instance = %(instance)s AND pid = %(pid)s
  AND host = %(host)s AND started_at = %(started_at)s
"""


def default_interval() -> float:
    """Seconds between beats: DIALTONE_HEARTBEAT_INTERVAL_S, else 5."""
    raw = os.environ.get(INTERVAL_ENV)
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        log.warning("%s=%r is not a number; using %s s", INTERVAL_ENV, raw, DEFAULT_INTERVAL_S)
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def host_name() -> str:
    return socket.gethostname()


def host_instance(prefix: str | None = None) -> str:
    """The instance name of an interchangeable replica: this host (``<prefix>@<host>``
    with a prefix). On Kubernetes the host is the pod's name, so a replacement pod
    beats on a row of its own and the lost pod's row is left behind: health reads
    such rows as replicas (``named_after_host``) and lets a fresh sibling cover them."""
    return f"{prefix}@{host_name()}" if prefix else host_name()


def named_after_host(instance: str, host: str) -> bool:
    """Whether a row's instance is its writer's host (``host_instance``): a replica
    whose successor may come back under another name, rather than a singleton (an
    application name, a SIP address) that a restart takes over."""
    return bool(host) and (instance == host or instance.endswith(f"@{host}"))


class Heartbeat:
    """The row (service, instance) of one process; see the module docstring.

    ``instance`` is either stable across restarts of the same role (a SIP address,
    an application name), so that a restarted process takes over its row instead
    of leaving the old one stale, or, for one of several interchangeable replicas,
    ``host_instance()``: a replaced replica's row is then left behind, and health
    tolerates it while another instance of the service runs (api.health). ``detail``
    is called on the beat thread and must be cheap and thread-safe (e.g. read a
    few counters).
    """

    def __init__(self, database_url: str, service: str, instance: str, *,
                 interval_s: float | None = None,
                 detail: Callable[[], Mapping[str, Any]] = dict) -> None:
        self.database_url = database_url
        self.service = service
        self.instance = instance
        self.interval_s = interval_s if interval_s is not None else default_interval()
        self._detail = detail
        self._key = {"service": service, "instance": instance, "pid": os.getpid(),
                     "host": host_name(), "started_at": datetime.now(UTC)}
        self._ticks = 0
        self._written = -1  # the tick count at the last write
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # the beat thread and stop() share the connection
        self._failing = False

    def tick(self) -> None:
        """The main loop turned: the next beat may be written. Any thread."""
        self._ticks += 1

    def start(self) -> None:
        """Beat now (counts as a tick) and every interval after, on a daemon thread."""
        self.tick()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{self.service}")
        self._thread.start()

    def stop(self, timeout: float = 5.0, *, clean: bool = True) -> None:
        """Stop beating; mark the row stopped (best effort) if the process stops as
        asked. ``clean=False`` (it stops on an error) leaves the row to go stale,
        as a crash would: health must not read a failure as a deliberate stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if clean:
            self._write(_STOPPED)
        with self._lock:
            self._close()

    def beat_once(self) -> bool:
        """Write a beat if the loop ticked since the last one; True when written."""
        ticks = self._ticks
        if ticks == self._written:
            return False  # the loop is stuck (or slow): let the row age
        if self._write(_BEAT):
            self._written = ticks
            return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat_once()
            self._stop.wait(self.interval_s)

    def _write(self, statement: str) -> bool:
        with self._lock:
            return self._write_locked(statement)

    def _write_locked(self, statement: str) -> bool:
        try:
            detail = dict(self._detail())
            conn = self._connection()
            conn.execute(statement, {**self._key, "interval_s": self.interval_s,
                                     "detail": Jsonb(detail)})
        except Exception as error:
            if not self._failing:
                log.warning("heartbeat %s/%s not written (%s); will retry",
                            self.service, self.instance, error)
            self._failing = True
            self._close()
            return False
        if self._failing:
            log.info("heartbeat %s/%s written again", self.service, self.instance)
        self._failing = False
        return True

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True,
                                         connect_timeout=CONNECT_TIMEOUT_S)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the heartbeat connection failed", exc_info=True)
        self._conn = None


def started(database_url: str, service: str, instance: str, **options: Any) -> Heartbeat:
    """A started Heartbeat (the one-liner for call sites)."""
    heartbeat = Heartbeat(database_url, service, instance, **options)
    heartbeat.start()
    return heartbeat
