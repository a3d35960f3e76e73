"""The embedded default's projection runner: no Kafka, straight from the store.

Reads the application's notification log after the position recorded with the
projections, applies each page as one transaction, and repeats. Because the
position is written in the same transaction as the rows, a crash at any point
resumes exactly where the last committed page ended.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.application import Application

from projections import positions
from projections.registry import ProjectionGroup
from streams.envelopes import decode

log = logging.getLogger(__name__)


class InProcessProjectionRunner:
    def __init__(
        self,
        app: Application[Any],
        database_url: str,
        groups: Sequence[ProjectionGroup],
        *,
        page_size: int = 1000,
        idle_wait: float = 0.05,
    ) -> None:
        self.app = app
        self.database_url = database_url
        self.groups = tuple(groups)
        self.page_size = page_size
        self.idle_wait = idle_wait
        self.source = f"store:{app.name}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """Apply the next page; return how many events it held (0 when caught up)."""
        # Each group commits its own position; resume from the one furthest behind
        # (the others skip what they have, being idempotent).
        after = min(positions.read(conn, g.names[0], self.source) for g in self.groups)
        notifications = self.app.recorder.select_notifications(
            start=after + 1, limit=self.page_size
        )
        if notifications:
            envelopes = decode(self.app, notifications)
            for group in self.groups:
                group.apply(conn, envelopes, self.source)
        return len(notifications)

    def catch_up(self) -> int:
        """Apply everything stored so far; return the number of events applied."""
        total = 0
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while applied := self.run_once(conn):
                total += applied
        return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"projections-{self.app.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    while not self._stop.is_set():
                        if not self.run_once(conn):
                            self._stop.wait(self.idle_wait)
            except psycopg.OperationalError as error:
                # The database went away: keep serving, retry until it is back.
                log.warning("projection runner lost the database (%s); retrying", error)
                self._stop.wait(1.0)
