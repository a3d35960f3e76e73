"""A background loop woken by the event store's commits.

eventsourcing's PostgreSQL recorder sends ``NOTIFY <events table>`` in every
transaction that appends events, and PostgreSQL delivers it at commit. A loop
that LISTENs on that channel reacts within milliseconds of a commit, and still
runs at least every ``tick_s`` (the resolution of any timers it keeps). When
the database goes away it reconnects and carries on: whatever it does must
therefore be resumable from what is stored. The loop itself is
``application.follow.Follower``; this class adds the heartbeat row and gives
each step the listening connection to work on.
"""

from __future__ import annotations

from typing import Any

import psycopg

from application.follow import Backoff, Follower
from application.heartbeats import Heartbeat


class NotifiedLoop:
    """Subclasses say what one step is; a step returns True when more work is waiting."""

    def __init__(self, database_url: str, channel: str, name: str, *,
                 tick_s: float = 0.1, retry_s: float = 1.0) -> None:
        self.database_url = database_url
        self.channel = channel
        self.name = name
        self.tick_s = tick_s
        self.retry_s = retry_s
        # service_heartbeats row; subclasses name it (HEARTBEAT_SERVICE, heartbeat_instance).
        self.heartbeat = Heartbeat(database_url, self.HEARTBEAT_SERVICE, self.heartbeat_instance())
        self.follower = Follower(
            name, lambda: self.step(self.follower.connection), database_url=database_url,
            channels=(channel,), tick_s=tick_s, backoff=Backoff(retry_s, retry_s),
            after_step=self.heartbeat.tick, count_steps=True)
        self._stop = self.follower.stop_event  # a step that pauses waits on it (the refresher)

    HEARTBEAT_SERVICE = "loop"

    def heartbeat_instance(self) -> str:
        return self.name

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.follower.start()
        self.heartbeat.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.follower.stop(timeout)
        self.heartbeat.stop()
