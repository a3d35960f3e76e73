"""The embedded default: the in-process runner feeds the call projections from the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from domain.call import Direction, Disposition, HangupSide, TransferKind
from projections import callcentre, calls
from streams.inprocess import InProcessProjectionRunner

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def service(database_url: str) -> CallService:
    apply_migrations(database_url)
    return CallService(env=eventsourcing_env(database_url))


def _answered_call(service: CallService, sip_call_id: str, held_s: int = 0) -> UUID:
    call_id = service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                    trunk="pstn", sip_call_id=sip_call_id, occurred_at=T0)
    service.route_call(call_id, "sip:2001@agents", T0 + timedelta(seconds=1))
    service.ring_call(call_id, T0 + timedelta(seconds=1))
    service.answer_call(call_id, T0 + timedelta(seconds=5))
    if held_s:
        service.hold_call(call_id, T0 + timedelta(seconds=10))
        service.resume_call(call_id, T0 + timedelta(seconds=10 + held_s))
    service.transfer_call(call_id, TransferKind.BLIND, "sip:2002@agents",
                          T0 + timedelta(seconds=40))
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal",
                     hangup_side=HangupSide.CALLER, sip_status=200,
                     occurred_at=T0 + timedelta(seconds=65))
    return call_id


def _runner(service: CallService, database_url: str) -> InProcessProjectionRunner:
    return InProcessProjectionRunner(service, database_url, [calls.GROUP])


def test_finished_call_becomes_one_cdr_row_with_durations(service: CallService,
                                                          database_url: str) -> None:
    call_id = _answered_call(service, "abc@host", held_s=20)
    applied = _runner(service, database_url).catch_up()

    assert applied == 8
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT disposition, wait_s, talk_s, hold_s, hold_count, final_callee, sip_status,"
            " hangup_side, jsonb_array_length(transfers) FROM cdr WHERE call_id = %s",
            (call_id,),
        ).fetchall()
        live = conn.execute("SELECT count(*) FROM call_live").fetchone()
    assert row == [("answered", 5.0, 40.0, 20.0, 1, "sip:2002@agents", 200, "caller", 1)]
    assert live == (0,)


def test_runner_resumes_after_its_position_and_adds_nothing_twice(service: CallService,
                                                                  database_url: str) -> None:
    _answered_call(service, "first@host")
    _runner(service, database_url).catch_up()
    _answered_call(service, "second@host")

    assert _runner(service, database_url).catch_up() == 6  # no hold
    assert _runner(service, database_url).catch_up() == 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM cdr").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM call_events").fetchone() == (12,)


def test_call_in_progress_is_live_until_it_ends(service: CallService, database_url: str) -> None:
    call_id = service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id="live@host", occurred_at=T0)
    service.ring_call(call_id, T0)
    runner = _runner(service, database_url)
    runner.catch_up()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT status FROM call_live").fetchall() == [("ringing",)]
        assert conn.execute("SELECT ended_at FROM cdr").fetchall() == [(None,)]


def test_a_page_is_one_commit_so_the_live_feed_is_told_once(service: CallService,
                                                             database_url: str) -> None:
    """Every group applies the page in one transaction: the live feed (api/live/notify.py)
    hears one `dialtone_projections` notification, when every group's position is the
    page's. A commit per group told it twice, first with the call-centre group still
    behind (it read a view that had not moved; issue 10's latency)."""
    _answered_call(service, "page@host")
    runner = InProcessProjectionRunner(service, database_url, [calls.GROUP, callcentre.GROUP],
                                       refresh=False)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN dialtone_projections")
        assert runner.catch_up() == 6  # no hold
        heard = list(listener.notifies(timeout=1.0))  # bounded: what the commits sent
        positions = listener.execute(
            "SELECT projection, position FROM projection_positions WHERE projection = ANY(%s)",
            ([calls.NAMES[0], callcentre.NAMES[0]],)).fetchall()
    assert len(heard) == 1
    assert sorted(positions) == sorted([(calls.NAMES[0], 6), (callcentre.NAMES[0], 6)])


def test_a_missed_wake_up_is_caught_by_the_tick(service: CallService,
                                                database_url: str) -> None:
    """The runner reacts to the store's NOTIFY; when one never reaches it (the listening
    connection made anew at that moment, say), it still reads every tick_s."""
    runner = InProcessProjectionRunner(service, database_url, [calls.GROUP], tick_s=0.2,
                                       refresh=False)
    runner.follower.channels = ("dialtone_test_nobody_notifies",)  # the store's never comes
    runner.start()
    try:
        call_id = service.initiate_call(caller="1001", callee="2001",
                                        direction=Direction.INBOUND, trunk=None,
                                        sip_call_id="missed@host", occurred_at=T0)
        with psycopg.connect(database_url, autocommit=True) as conn:
            for _ in range(600):  # bounded (30 s); the tick is 0.2 s
                if conn.execute("SELECT 1 FROM call_live WHERE call_id = %s",
                                (call_id,)).fetchone():
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the runner never read the call without its notification")
    finally:
        runner.stop()
