"""The B2BUA worker's call-centre follower (real PostgreSQL) leaves its LISTEN wait
when asked to stop, rather than at the end of the wait: a worker's stop no longer
includes the follower's tick (it was about a second of every stop)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import psycopg

from adapters.sip.routing.directory import Directory
from adapters.sip.routing.follower import CentreFollower
from application.call_control import ControlRequest
from application.callcentre import CallCentreService
from application.routing_view import OfferChange
from dialtone.database import eventsourcing_env


class NoCalls:
    """A worker holding no call: nothing the follower reads is for it."""

    def owns(self, call_id: UUID) -> bool:  # noqa: ARG002 - the protocol's signature
        return False

    def offer_changed(self, change: OfferChange) -> None: ...
    def queue_left(self, event: Any) -> None: ...
    def control_requested(self, request: ControlRequest) -> None: ...


def test_stop_wakes_the_follower_out_of_a_long_listen_wait(database_url: str) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        # An hour's tick: only a wake-up can end the wait within the join's bound.
        follower = CentreFollower(service, database_url, Directory(), NoCalls(), tick_s=3600)
        follower.load()
        follower.start()
        _wait_until_listening(database_url)
        follower.stop(timeout=30)
        assert follower._thread is not None
        assert not follower._thread.is_alive()


def _wait_until_listening(database_url: str) -> None:
    """Until the follower has issued its last LISTEN (its own wake-up channel): a
    NOTIFY from then on reaches its wait, even one sent before the wait begins."""
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                            " AND query LIKE 'LISTEN \"dialtone_follower_%'").fetchone():
                return
            time.sleep(0.05)
    raise AssertionError("the follower never listened")
