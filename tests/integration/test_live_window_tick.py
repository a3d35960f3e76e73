"""Window figures move with time alone (issue 10.2): a call leaves the rolling
window without any new event, and the stream says so by itself (LiveHub's tick),
on a real PostgreSQL behind a real server. The window is 60 s here and the tick
0.5 s, so the test takes seconds, not minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
import psycopg
import pytest

from api.app import create_app
from api.auth.dependencies import Principal
from api.auth.permissions import P
from api.live.snapshot import live_snapshot
from api.routes.live_stream import stream_router
from api.schemas.live import LiveSnapshot
from application.callcentre import CallCentreService
from application.identity.model import Role
from dialtone.migrations import apply_migrations
from projections import callcentre
from projections.envelope import decode
from tests.integration.api_support import api_key
from tests.integration.live_support import SseReader, served, wait_until

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

WINDOW_S = 60.0
MARGIN_S = 6.0  # how long the call stays in the window after it is projected


async def one_minute_view(conn: asyncpg.Connection, principal: Principal,
                          now: datetime) -> LiveSnapshot:
    return await live_snapshot(conn, principal, now, WINDOW_S)


def project_a_short_call(database_url: str) -> datetime:
    """A queue, and a call that entered it WINDOW_S - MARGIN_S ago and hung up at once;
    when it entered."""
    now = datetime.now(UTC)
    offered = now - timedelta(seconds=WINDOW_S - MARGIN_S)
    service = CallCentreService()
    queue = service.create_queue("sales", "Sales", "longest_idle",
                                 occurred_at=now - timedelta(hours=1)).id
    call = uuid4()
    service.enqueue_call(queue, call, 0, offered)
    service.abandon_call(queue, call, offered + timedelta(seconds=1))
    events = decode(service, service.recorder.select_notifications(1, 100))
    with psycopg.connect(database_url, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
    return offered


def the_queue(state: Any) -> Any:
    """The one queue of the view (the stream keys queues by id)."""
    queues = list(((state or {}).get("queues") or {}).values())
    return queues[0] if queues else None


def window_offered(state: Any) -> int | None:
    queue = the_queue(state)
    return None if queue is None else int(queue["window"]["offered"])


def test_a_call_leaving_the_window_changes_the_stream_without_an_event(
        database_url: str) -> None:
    apply_migrations(database_url)
    key = api_key(database_url, Role.SUPERVISOR)
    app = create_app(database_url, extra_routers=(
        stream_router(one_minute_view, P.LIVE_READ, tick_s=0.5),))
    with served(app) as url:
        reader = SseReader(url + "/v1/live/stream", {"Authorization": f"Bearer {key}"}).start()
        assert reader.wait_for(1)[0].event == "snapshot"
        offered = project_a_short_call(database_url)
        wait_until(lambda: window_offered(reader.state()) == 1, 30, "the call in the window")
        committed = reader.events[-1].id
        wait_until(lambda: window_offered(reader.state()) == 0, 30, "the call out of it")
        last = reader.events[-1]
        assert (last.event, last.id) == ("change", committed)  # no commit in between
        state = reader.state()
        # Today's figures keep the call while the day it entered is still the view's
        # today; a run across midnight reads it as yesterday's (ci77 ran at 00:00 UTC).
        zone = ZoneInfo(state["time_zone"])
        same_day = offered.astimezone(zone).date() == datetime.fromisoformat(
            state["as_of"]).astimezone(zone).date()
        assert the_queue(state)["today"]["offered"] == (1 if same_day else 0)
        reader.close()
