"""The worker's follower of the call-centre log, and its ear for call-control requests.

B2BUA workers are processes of their own, apart from the routing process, so
a worker learns "ring agent A for call C" from the event store: this thread
LISTENs on the call-centre events channel (eventsourcing's recorder NOTIFYs
it in every append transaction), reads the notifications after its position
(only the topics below), folds configuration into the ``Directory`` and hands
the call-flow events of the calls this worker owns to the pjsua2 thread.
A reservation reaches the worker a read after its commit, not a poll later.

The same connection LISTENs on the call-control channel
(``application.call_control``): a request about a call this worker owns is
handed over too; requests about other calls are ignored (their owner answers).

State is only a cache of the log: after losing the database the thread
reconnects and carries on from the same position (``application.follow.Follower``
runs the loop; this module says what a step and a request are).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic

from adapters.sip.routing.directory import CONFIG_TOPICS, Directory
from application.call_control import REQUEST_CHANNEL, ControlRequest
from application.callcentre import CallCentreService
from application.follow import Follower, head, pages
from application.routing_view import OFFER_EVENTS, OfferChange
from domain.agent import Agent
from domain.queue import Queue

log = logging.getLogger(__name__)

# Call-flow events a worker acts on for its own calls.
QUEUE_MOVES: tuple[type[Any], ...] = (Queue.CallOverflowed, Queue.CallTransferredOut)
FLOW_TOPICS = tuple(get_topic(cls) for cls in (*OFFER_EVENTS, *QUEUE_MOVES))
PAGE = 500
# How often the tenants' SIP domains are read again (they are a table, not events):
# a domain given to a tenant routes its devices' offers through the edge this late.
DOMAINS_EVERY_S = 10.0


class FollowerListener(Protocol):
    """The worker, as the follower sees it. Called on the follower thread."""

    def owns(self, call_id: UUID) -> bool: ...
    def offer_changed(self, change: OfferChange) -> None: ...
    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None: ...
    def control_requested(self, request: ControlRequest) -> None: ...


class CentreFollower:
    def __init__(self, service: CallCentreService, database_url: str, directory: Directory,
                 listener: FollowerListener, *, tick_s: float = 2.0) -> None:
        self.service = service
        self.database_url = database_url
        self.directory = directory
        self.listener = listener
        self.tick_s = tick_s
        self.position = 0
        self._domains_read_at: float | None = None
        # Its own wake-up channel (dialtone_follower_*), so stop() ends the LISTEN wait
        # (up to tick_s) at once instead of waiting it out: most of a worker's stop.
        self.follower = Follower(
            "dialtone-follower", self._step, database_url=database_url,
            channels=(self.channel, REQUEST_CHANNEL), tick_s=tick_s,
            on_notify=self._notified, wake_prefix="dialtone_follower_")

    # Start-up: the configuration as it is now, before the first call is taken.

    def load(self) -> int:
        """Fold the configuration history; returns the events folded."""
        until = head(self.service.recorder)
        self.refresh_domains()
        folded = self._read(CONFIG_TOPICS, until)
        self.position = until
        log.info("call-centre directory: %d queues, %d menus, %d agents (%d events)",
                 len(self.directory.queues), len(self.directory.menus),
                 len(self.directory.agents), folded)
        return folded

    def start(self) -> None:
        self.follower.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.follower.stop(timeout)

    @property
    def _thread(self) -> threading.Thread | None:
        return self.follower.thread

    @property
    def channel(self) -> str:
        channel: str = self.service.recorder.channel_name  # type: ignore[attr-defined]  # PostgreSQL recorder
        return channel

    # The thread (the follower's): a step reads the log, a notification may be a request.

    def _step(self) -> bool:
        if (self._domains_read_at is not None
                and time.monotonic() - self._domains_read_at >= DOMAINS_EVERY_S):
            self.refresh_domains()
        self.pull()
        return False  # pull read up to the log's end: wait for a commit or a request

    def _notified(self, notify: psycopg.Notify) -> None:
        if notify.channel == REQUEST_CHANNEL:
            self._control(notify.payload)

    def refresh_domains(self) -> None:
        """Read the tenants' SIP domains, when offers to their devices go through
        the edge (a worker without an edge never reads them)."""
        if self.directory.edge_route is None:
            return
        with self.service.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT lower(sip_domain) AS domain FROM tenants"
                                " WHERE sip_domain IS NOT NULL").fetchall()
        self.directory.sip_domains = frozenset(row["domain"] for row in rows)
        self._domains_read_at = time.monotonic()

    def pull(self) -> int:
        """Read and dispatch what the log holds after ``position``."""
        return self._read((*CONFIG_TOPICS, *FLOW_TOPICS), None)

    def _read(self, topics: Sequence[str], until: int | None) -> int:
        total = 0
        mapper = self.service.mapper
        for page in pages(self.service.recorder, self.position, page_size=PAGE,
                          topics=topics, until=until):
            for notification in page:
                self._dispatch(mapper.to_domain_event(notification))
            self.position = page[-1].id
            total += len(page)
        return total

    def _dispatch(self, event: Any) -> None:
        if type(event) in OFFER_EVENTS:
            if self.listener.owns(event.call_id):
                self.listener.offer_changed(self._offer_change(event))
            return
        if isinstance(event, QUEUE_MOVES):
            if self.listener.owns(event.call_id):
                self.listener.queue_left(event)
            return
        self.directory.apply(event)

    def _offer_change(self, event: Any) -> OfferChange:
        agent_id: UUID = event.originator_id
        reserved = isinstance(event, Agent.Reserved)
        return OfferChange(
            kind=OFFER_EVENTS[type(event)], agent_id=agent_id, call_id=event.call_id,
            queue_id=event.queue_id if reserved else None,
            device_uri=self.directory.device_uri(agent_id),
            deadline=event.offer_deadline if reserved else None,
            occurred_at=event.occurred_at)

    def _control(self, payload: str) -> None:
        try:
            request = ControlRequest.decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed call-control request: %.200s", payload)
            return
        if self.listener.owns(request.call_id):
            self.listener.control_requested(request)
