"""One way to follow an application's notification log.

Every reader of the event store's log (the relay, the in-process projection
runner, the webhook store follower, the routing process, the B2BUA worker's
offer follower, rebuild and replay, the demo narrator) reads it with
``pages`` and, when it keeps following, runs its steps in a ``Follower``:

- ``pages(recorder, after, ...)``: the notifications after a position, a
  batched select at a time, until a short page (``until``: up to a position;
  ``topics``: only those events).
- ``Follower(name, step, ...)``: calls ``step`` until stopped. A step reads after
  the position its caller keeps and returns True when more is waiting (the
  next step runs at once); otherwise the follower waits ``tick_s`` (the
  resolution of any timers the caller keeps), woken earlier by a NOTIFY on
  ``channels`` (eventsourcing's PostgreSQL recorder NOTIFYs its events table's
  channel in every append transaction; PostgreSQL delivers it at commit). With
  no channel it polls. ``stop()`` wakes it at once (a NOTIFY on a channel of its
  own). A failed step (``retry_on``) is retried after a back-off that doubles
  from ``Backoff.first_s`` to ``most_s``, the listening connection made anew;
  ``fatal`` errors and those not in ``retry_on`` end ``run()``.

``NotifiedLoop`` is the shape most store-woken processes take (the in-process
projection runner, the webhooks' store follower, the routing process, the
interval refresher): a ``Follower`` on the store's channel with a heartbeat row,
whose subclass says what one step does on the listening connection. Whatever a
step does must be resumable from what is stored: the database may go away
between two steps, and the loop reconnects and carries on.

The follower never holds a position: where to resume and how the position is
made durable stay the caller's, because that is what its guarantees rest on
(the relay resumes from what Kafka committed; the projection runner and the
webhook follower write theirs in the transaction that applies the page; the
routing process and the worker's follower keep a cache of the log in memory and
re-read it after a restart). A step that fails leaves that position where the
last handled page put it, so the page is read again.

Why not eventsourcing's own ``ProjectionRunner``/``ApplicationSubscription``
(9.5): they track positions in their own ``notification_tracking`` table (ours
live in ``projection_positions``, ``relay_positions`` or Kafka), a subscription
whose database goes away stops with the error instead of reconnecting, it yields
one event at a time (our steps apply and commit a page), and it has no tick for
the routing process's timers nor room for the worker's call-control channel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import ApplicationRecorder, Notification
from psycopg import sql

from application import metrics
from application.heartbeats import Heartbeat

__all__ = ["DATABASE_ERRORS", "Backoff", "Follower", "NotifiedLoop", "domain_events", "head",
           "page_after", "pages"]

log = logging.getLogger(__name__)

# The database away: eventsourcing wraps psycopg's errors; a caller's own
# connection (or the follower's listening one) raises psycopg's.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    persistence.OperationalError, persistence.InterfaceError,
    psycopg.OperationalError, psycopg.InterfaceError)


def head(recorder: ApplicationRecorder) -> int:
    """The log's last position now (0 when empty): where a follower that tells
    only what happens from now on starts."""
    return recorder.max_notification_id() or 0


def page_after(recorder: ApplicationRecorder, position: int, limit: int, *,
               topics: Sequence[str] = (), until: int | None = None) -> Sequence[Notification]:
    """At most ``limit`` notifications after ``position`` (up to ``until``), in order."""
    return recorder.select_notifications(start=position + 1, limit=limit, stop=until,
                                         topics=topics)


def pages(recorder: ApplicationRecorder, after: int = 0, *, page_size: int,
          topics: Sequence[str] = (), until: int | None = None,
          ) -> Iterator[Sequence[Notification]]:
    """The pages after ``after``, each read when the caller asks for it (so a
    caller that handled a page and failed on the next resumes after the first).
    Ends with a short page: what is committed later is the next read's."""
    position = after
    while page := page_after(recorder, position, page_size, topics=topics, until=until):
        yield page
        if len(page) < page_size:
            return
        position = page[-1].id


def domain_events(app: Any, notifications: Sequence[Notification]) -> list[Any]:
    """The notifications' domain events. One this release cannot decode (its class
    unknown: a newer release's, read after a rollback) is logged and left out: a
    follower that routes or narrates goes on, where the page would fail for ever."""
    events = []
    for notification in notifications:
        try:
            events.append(app.mapper.to_domain_event(notification))
        except Exception as error:  # decoding is pure: whatever fails, the event is why
            log.error("%s: stored event %s at position %d cannot be decoded by this release "
                      "(%s: %s); left out", getattr(app, "name", app), notification.topic,
                      notification.id, type(error).__name__, error)
    return events


@dataclass(frozen=True)
class Backoff:
    """The wait after the n-th failure in a row: ``first_s`` doubling up to ``most_s``."""

    first_s: float = 1.0
    most_s: float = 1.0

    def delay(self, in_a_row: int) -> float:
        return min(self.most_s, self.first_s * 2.0 ** max(0, in_a_row - 1))


Step = Callable[[], bool]  # True: more is waiting, step again at once
FailureHook = Callable[[BaseException, float], None]  # the error, the wait before the retry
NotifyHook = Callable[[psycopg.Notify], None]

WAKE_PREFIX = "dialtone_wake_"


class Follower:
    """Runs a follower's steps until stopped (see the module docstring)."""

    def __init__(self, name: str, step: Step, *, database_url: str | None = None,
                 channels: Sequence[str] = (), tick_s: float = 0.5,
                 backoff: Backoff = Backoff(),
                 retry_on: tuple[type[BaseException], ...] = (Exception,),
                 fatal: tuple[type[BaseException], ...] = (),
                 on_failure: FailureHook | None = None, on_notify: NotifyHook | None = None,
                 after_step: Callable[[], object] | None = None, count_steps: bool = False,
                 wake_prefix: str = WAKE_PREFIX) -> None:
        if channels and database_url is None:
            raise ValueError("a follower that listens needs a database_url")
        self.name = name
        self.step = step
        self.database_url = database_url
        self.channels = tuple(channels)
        self.tick_s = tick_s
        self.backoff = backoff
        self.retry_on = retry_on
        self.fatal = fatal
        self.on_failure = on_failure or self._log_failure
        self.on_notify = on_notify
        self.after_step = after_step
        self.count_steps = count_steps  # dialtone_loop_steps / _failures{loop=name}
        self.failures = 0  # steps (or connections) that failed, all told
        self._in_a_row = 0
        self.stop_event = threading.Event()  # set by stop(); a step may wait on it
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: psycopg.Connection[Any] | None = None
        # A channel of its own, so stop() ends the LISTEN wait (up to tick_s) at once.
        self.wake_channel = f"{wake_prefix}{uuid4().hex}"

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The listening connection (autocommit), for a step that works on it."""
        if self._connection is None:
            raise RuntimeError(f"{self.name} is not listening")
        return self._connection

    def start(self) -> None:
        """Run in a daemon thread of its own, named after the follower."""
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop, waking the follower out of its wait; join its thread if it has one."""
        first = not self.stop_event.is_set()
        self.stop_event.set()
        if first and self.channels and self._running.is_set():
            self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wake(self) -> None:
        """NOTIFY the follower's own channel. If the database cannot be reached the
        follower is not in its wait either: it is backing off, and its wait on the
        stop flag ends at once."""
        assert self.database_url is not None
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=2) as conn:
                conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(self.wake_channel)))
        except psycopg.Error as error:
            log.info("%s: wake-up not sent (%s)", self.name, error)

    def run(self) -> None:
        """Step until stopped, riding out the failures ``retry_on`` names."""
        self._running.set()
        try:
            while not self.stop_event.is_set():
                try:
                    if self.channels:
                        self._listen()
                    else:
                        self._poll()
                except self.fatal:
                    raise
                except self.retry_on as error:
                    self._failed(error)
        finally:
            self._running.clear()

    # -- internals -------------------------------------------------------------------

    def _poll(self) -> None:
        while not self.stop_event.is_set():
            if not self._turn():
                self.stop_event.wait(self.tick_s)

    def _listen(self) -> None:
        assert self.database_url is not None
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            # The wake-up channel last: once it is listened to, a stop() reaches the wait.
            for channel in (*self.channels, self.wake_channel):
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._connection = conn
            try:
                self._listening(conn)
            finally:
                self._connection = None

    def _listening(self, conn: psycopg.Connection[Any]) -> None:
        while not self.stop_event.is_set():
            if self._turn():
                continue  # more to do: no waiting
            # Notifications that arrived during the step are already queued.
            for notify in conn.notifies(timeout=self.tick_s, stop_after=1):
                if notify.channel != self.wake_channel and self.on_notify is not None:
                    self.on_notify(notify)

    def _turn(self) -> bool:
        more = self.step()
        self._in_a_row = 0
        if self.count_steps:
            metrics.LOOP_STEPS.labels(loop=self.name).inc()
        if self.after_step is not None:
            self.after_step()  # after a step succeeded: one failing for ever stops a beat
        return more

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        self._in_a_row += 1
        if self.count_steps:
            metrics.LOOP_FAILURES.labels(loop=self.name).inc()
        delay = self.backoff.delay(self._in_a_row)
        self.on_failure(error, delay)
        self.stop_event.wait(delay)

    def _log_failure(self, error: BaseException, delay: float) -> None:
        if isinstance(error, DATABASE_ERRORS):
            log.warning("%s lost the database (%s); retrying in %.1f s", self.name, error, delay)
        else:
            log.error("%s step failed; retrying in %.1f s", self.name, delay, exc_info=error)


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
