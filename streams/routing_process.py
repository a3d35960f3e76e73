"""Runs the routing process in a thread, woken by the event store's NOTIFY.

eventsourcing's PostgreSQL recorder sends ``NOTIFY <events table>`` in every
transaction that appends events; PostgreSQL delivers it at commit. The runner
LISTENs on that channel, so a step starts as soon as anything is committed
(an agent becoming free is routed within milliseconds), and at least every
``tick_s`` otherwise, which is the resolution of the timers (offer timeouts,
wrap-up ends, overflow).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from psycopg import sql

from application.router import RoutingProcess

log = logging.getLogger(__name__)


class RoutingRunner:
    def __init__(self, process: RoutingProcess, database_url: str, *,
                 tick_s: float = 0.1) -> None:
        self.process = process
        self.database_url = database_url
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def channel(self) -> str:
        channel: str = self.process.service.recorder.channel_name  # type: ignore[attr-defined]  # PostgreSQL recorder only
        return channel

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="routing-process", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._loop(conn)
            except psycopg.OperationalError as error:
                # The database went away: the process state is only a cache of
                # the log, so reconnect and carry on from the same position.
                log.warning("routing process lost the database (%s); retrying", error)
                self._stop.wait(1.0)
            except Exception:
                log.exception("routing step failed; retrying")
                self._stop.wait(1.0)

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            pulled = self.process.step()
            if pulled >= self.process.page_size:
                continue  # more history to read: no waiting
            # Notifications that arrived during the step are already queued.
            for _ in conn.notifies(timeout=self.tick_s, stop_after=1):
                pass
