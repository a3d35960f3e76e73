"""Resuming the live feed after more changes than a client's queue holds, over the
real PostgreSQL and a real server: the client that comes back with its
`Last-Event-ID` (a slow client dropped always needs more than its queue, see
api/live/views.py `Subscriber.offer`) gets a fresh snapshot, not the last few
patches, and holds the server's state again.

The view is the projection positions, as in test_live_stream.py."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.auth.permissions import Permission
from api.routes.live_stream import stream_router
from application.identity.model import Role
from dialtone.migrations import apply_migrations
from tests.integration.api_support import api_key
from tests.integration.live_support import Event, SseReader, served, wait_until
from tests.integration.test_live_stream import STREAM, commit, positions_view

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

BUFFER = 3  # frames a client's queue holds (64 in production)


def built(events: list[Event]) -> Any:
    """The view a client holds after `events` (of one connection or several)."""
    return SseReader("", {}, events=list(events)).state()


def test_resuming_after_more_changes_than_the_buffer_holds_gives_the_servers_state(
        database_url: str) -> None:
    apply_migrations(database_url)
    headers = {"Authorization": f"Bearer {api_key(database_url, Role.SUPERVISOR)}"}
    app = create_app(database_url, extra_routers=(
        stream_router(positions_view, Permission.REPORTS_READ, buffer=BUFFER,
                      heartbeat_s=0.5),))  # a closed client notices within 0.5 s
    with served(app) as url:
        away = SseReader(url + STREAM, headers).start()
        assert [(e.event, e.id) for e in away.wait_for(1)] == [("snapshot", 0)]
        away.close()  # the client goes away (dropped as slow, a network blip)
        wait_until(lambda: away.ended, 30, "the client gone")
        seen = list(away.events)  # what it holds

        keeper = SseReader(url + STREAM, headers).start()  # reads every change as it comes
        try:
            changes = BUFFER + 2
            for n in range(1, changes + 1):  # one commit at a time: one patch each
                commit(database_url, f"store:s{n}", 1)
                keeper.wait_for(1 + n)
            server = {"positions": {f"store:s{n}": 1 for n in range(1, changes + 1)}}
            assert built(keeper.events) == server

            resumed = SseReader(url + STREAM, {**headers, "Last-Event-ID": str(seen[-1].id)})
            resumed.start()
            back = resumed.wait_for(1)
            assert built(seen + back) == server
            assert [(e.event, e.id) for e in back] == [("snapshot", changes)]

            commit(database_url, "store:s1", 4)  # and it goes on from there
            resumed.wait_for(2)
            assert built(seen + resumed.events) == {"positions": {**server["positions"],
                                                                  "store:s1": 4}}
            resumed.close()
        finally:
            keeper.close()
