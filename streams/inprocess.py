"""The embedded default's projection runner: no Kafka, straight from the store.

Reads the application's notification log after the position recorded with the
projections, applies each page to every group in one transaction (one commit,
so the live feed is told once, when the whole page is there), and repeats. Because the
position is written in the same transaction as the rows, a crash at any point
resumes exactly where the last committed page ended. An event a projection
cannot apply (see projections.positions) is parked and passed over, so it
never stops the runner; database failures raise, and the loop retries the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.application import Application

from application.follow import NotifiedLoop, page_after
from projections import positions, touched
from projections.envelope import decode_each
from projections.registry import ProjectionGroup
from streams.refresher import ProjectionRefresher, settles


class InProcessProjectionRunner(NotifiedLoop):
    def __init__(
        self,
        app: Application[Any],
        database_url: str,
        groups: Sequence[ProjectionGroup],
        *,
        page_size: int = 1000,
        tick_s: float = 0.5,
        refresh: bool = True,
    ) -> None:
        channel = getattr(app.recorder, "channel_name", app.name)  # PostgreSQL's NOTIFY
        super().__init__(database_url, channel, f"projections-{app.name}", tick_s=tick_s)
        self.app = app
        self.groups = tuple(groups)
        self.page_size = page_size
        self.source = f"store:{app.name}"
        self.kinds = frozenset().union(*(g.kinds for g in self.groups))
        # The groups' deferred work (interval buckets) runs beside, on its own connection
        # (``refresh``: one per process is enough, beside the runner whose events need it).
        work = settles(self.groups) if refresh else []
        self.refresher = (ProjectionRefresher(database_url, work, f"refresher-{app.name}")
                          if work else None)

    def start(self) -> None:
        super().start()
        if self.refresher is not None:
            self.refresher.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.refresher is not None:
            self.refresher.stop(timeout)
        super().stop(timeout)

    HEARTBEAT_SERVICE = "projections"

    def heartbeat_instance(self) -> str:
        return self.name  # projections-<application>: one runner per application

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        return self.run_once(conn) >= self.page_size

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """Apply the next page; return how many events it held (0 when caught up)."""
        # Each group commits its own position; resume from the one furthest behind
        # (the others skip what they have, being idempotent).
        after = min(positions.read(conn, g.names[0], self.source) for g in self.groups)
        notifications = page_after(self.app.recorder, after, self.page_size)
        if notifications:
            # An event this code cannot decode is parked for every group (as the Faust
            # worker parks a message it cannot read), not retried for ever with the page.
            envelopes, refused = decode_each(self.app, notifications)
            # Every group in one transaction (each group's own is a savepoint in it): one
            # commit, so one `NOTIFY dialtone_projections` per page. A commit per group
            # woke the live feed (api/live/notify.py) on the first group's, before the
            # others' rows were there: it read a view that had not moved, and the page's
            # real change waited for that read to end (issue 10: about 120 ms at the
            # median). A poison event still parks alone (its savepoint); any other
            # failure rolls the whole page back, and the page is read again. The page's
            # touched ids go first (projections/touched.py: the feed reads only those).
            with conn.transaction():
                touched.notify(conn, self.source, after, envelopes, self.kinds)
                for group in self.groups:
                    for notification, error in refused:
                        positions.park_undecodable(conn, group, notification, self.source,
                                                   error)
                    positions.apply_or_park(conn, group, envelopes, self.source)
        return len(notifications)

    def catch_up(self) -> int:
        """Apply everything stored so far, deferred work included; return the number of
        events applied."""
        total = 0
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while applied := self.run_once(conn):
                total += applied
        if self.refresher is not None:
            self.refresher.refresh_now()
        return total
