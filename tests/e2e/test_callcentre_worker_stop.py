"""A worker stopped (SIGTERM) while a caller's enqueue is still being committed:
the call's history keeps the Queued of the queue that took it, before its end.

Before, the drain ended such a call at once and the enqueue's outcome, heard
after the end, emitted nothing: the queue had the call (and its dropped
abandon), and the call had no Queued (docs/b2bua.md, "Entering a queue")."""

from __future__ import annotations

import signal

import psycopg
import pytest

from application.callcentre import CallCentreService
from tests.fixtures.callcentre import (
    StartPhone,
    call_of,
    centre,
    event_names,
    phone,
    provision_queue,
    queue_of,
    wait_for,
)
from tests.fixtures.sip import CallStore, StartWorker

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone"]  # fixtures used by name

# Held by the test, this lock keeps the worker's enqueue from committing (every
# call-centre command reads and appends to this table) until the worker is stopping.
HOLD_CENTRE_STORE = "LOCK TABLE callcentreservice_events IN ACCESS EXCLUSIVE MODE"


def test_a_worker_stopped_before_the_queue_answered_keeps_the_calls_queued(
    b2bua: StartWorker, centre: CallCentreService, phone: StartPhone, call_store: CallStore,
    database_url: str,
) -> None:
    provision_queue(centre, "sales", [], did="5000")  # nobody to take the call
    worker = b2bua()
    caller = phone("caller")
    with psycopg.connect(database_url) as hold:
        hold.execute(HOLD_CENTRE_STORE)  # in a transaction until the rollback below
        caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
        sip_call_id = caller.wait("dialled")["sip_call_id"]
        caller.wait("state", state="CONFIRMED")  # answered with the enqueue submitted
        worker.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "the end waits for the queue's answer" in worker.log_text(),
                 "the worker's drain holding the call's end", timeout=20)
        hold.rollback()  # the enqueue commits now, while the worker drains
    assert worker.process.wait(30) == 0, worker.log_text()

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert event_names(call_store, sip_call_id) == ["Initiated", "Routed", "Queued", "Ended"]
    call = call_of(call_store, sip_call_id)
    assert (call.disposition, call.hangup_cause) == ("failed", "worker_shutdown")
    wait_for(lambda: queue_of(centre, "sales").tally.abandoned == 1, "the queue's drop")
    queue = queue_of(centre, "sales")
    assert (queue.tally.offered, queue.calls) == (1, [])  # it had the call, then dropped it


def test_a_worker_stopped_while_the_queue_never_answers_still_ends_the_call_and_exits(
    b2bua: StartWorker, centre: CallCentreService, phone: StartPhone, call_store: CallStore,
    database_url: str,
) -> None:
    """The wait for the queue's answer is bounded (half the drain's grace): the call
    ends without it, and the worker exits as it would have."""
    provision_queue(centre, "sales", [], did="5000")
    worker = b2bua()
    caller = phone("caller")
    with psycopg.connect(database_url) as hold:
        hold.execute(HOLD_CENTRE_STORE)  # held until the worker is gone
        caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
        sip_call_id = caller.wait("dialled")["sip_call_id"]
        caller.wait("state", state="CONFIRMED")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0, worker.log_text()
        hold.rollback()
    assert "the end waits for the queue's answer" in worker.log_text()

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert event_names(call_store, sip_call_id) == ["Initiated", "Routed", "Ended"]
    call = call_of(call_store, sip_call_id)
    assert (call.disposition, call.hangup_cause) == ("failed", "worker_shutdown")
    assert queue_of(centre, "sales").calls == []  # its enqueue died with the worker
