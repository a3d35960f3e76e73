"""A background loop woken by the event store's commits.

eventsourcing's PostgreSQL recorder sends ``NOTIFY <events table>`` in every
transaction that appends events, and PostgreSQL delivers it at commit. A loop
that LISTENs on that channel reacts within milliseconds of a commit, and still
runs at least every ``tick_s`` (the resolution of any timers it keeps). When
the database goes away it reconnects and carries on: whatever it does must
therefore be resumable from what is stored.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from psycopg import sql

from application import metrics
from application.heartbeats import Heartbeat

log = logging.getLogger(__name__)


class NotifiedLoop:
    """Subclasses say what one step is; a step returns True when more work is waiting."""

    def __init__(self, database_url: str, channel: str, name: str, *,
                 tick_s: float = 0.1, retry_s: float = 1.0) -> None:
        self.database_url = database_url
        self.channel = channel
        self.name = name
        self.tick_s = tick_s
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # service_heartbeats row; subclasses name it (HEARTBEAT_SERVICE, heartbeat_instance).
        self.heartbeat = Heartbeat(database_url, self.HEARTBEAT_SERVICE, self.heartbeat_instance())

    HEARTBEAT_SERVICE = "loop"

    def heartbeat_instance(self) -> str:
        return self.name

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self.heartbeat.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.heartbeat.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._loop(conn)
            except psycopg.OperationalError as error:
                metrics.LOOP_FAILURES.labels(loop=self.name).inc()
                log.warning("%s lost the database (%s); retrying", self.name, error)
                self._stop.wait(self.retry_s)
            except Exception:
                metrics.LOOP_FAILURES.labels(loop=self.name).inc()
                log.exception("%s step failed; retrying", self.name)
                self._stop.wait(self.retry_s)

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            more = self.step(conn)
            metrics.LOOP_STEPS.labels(loop=self.name).inc()
            self.heartbeat.tick()  # after a step succeeded: one failing for ever stops the beat
            if more:
                continue  # more to do: no waiting
            # Notifications that arrived during the step are already queued.
            for _ in conn.notifies(timeout=self.tick_s, stop_after=1):
                pass
