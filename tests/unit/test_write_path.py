"""The worker's one retry rule (adapters/sip/store/write_path.py) with each lane's
figures, and the centre link following it (issue 13 §2).

The rule runs on a fake clock (no sleeping); the centre link runs real commands
on the real CallCentreService (in-memory persistence), the commands themselves
failing as a store or a busy queue would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from adapters.sip.store.centre_link import CentreLink, Outcome
from adapters.sip.store.storage import StorageThread
from adapters.sip.store.write_path import (
    CALL_FACTS,
    CENTRE_COMMANDS,
    Attempts,
    RetryPolicy,
    WriteOutcome,
)
from application.callcentre import CallCentreService, ConcurrentChange
from application.calls import CallService
from dialtone.database import eventsourcing_env
from domain.call_commands import InitiateCall
from domain.errors import IllegalTransition


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attempts(policy: RetryPolicy, clock: Clock) -> Attempts:
    return policy.attempts(clock, draw=lambda low, high: (low + high) / 2)


def outage_delays(policy: RetryPolicy, clock: Clock, limit: int = 100) -> list[float]:
    """The waits before each retry of a write that keeps failing on an outage
    (each wait passing on the clock), until the rule gives up or ``limit``."""
    write = attempts(policy, clock)
    delays: list[float] = []
    for _ in range(limit):
        retry = write.after(psycopg.OperationalError("connection refused"))
        if retry is None:
            break
        assert retry.outage
        delays.append(retry.delay)
        clock.now += retry.delay
    return delays


def test_call_facts_wait_out_any_outage_doubling_up_to_the_cap() -> None:
    clock = Clock()
    delays = outage_delays(CALL_FACTS, clock, limit=100)
    assert delays[:7] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0])
    assert len(delays) == 100  # never gives up: the facts stay buffered
    assert set(delays[6:]) == {5.0}


def test_call_facts_retry_a_conflict_at_once_twice_then_give_up() -> None:
    write = attempts(CALL_FACTS, Clock())
    first, second = write.after(IntegrityError()), write.after(IntegrityError())
    assert first is not None
    assert second is not None
    assert (first.delay, first.outage) == (0.0, False)
    assert write.after(IntegrityError()) is None


def test_a_conflict_does_not_count_as_an_outage_nor_grow_its_backoff() -> None:
    write = attempts(CALL_FACTS, Clock())
    write.after(IntegrityError())
    retry = write.after(OperationalError("gone"))
    assert retry is not None
    assert (retry.delay, retry.outage) == (0.1, True)


def test_centre_commands_give_up_an_outage_whose_next_wait_ends_past_30_s() -> None:
    clock = Clock()
    delays = outage_delays(CENTRE_COMMANDS, clock)
    assert delays[:6] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    assert sum(delays) <= 30.0
    assert sum(delays) + 2.0 > 30.0  # the next wait would have ended past the limit


def test_centre_commands_retry_a_busy_queue_after_a_short_pause_until_30_s() -> None:
    clock = Clock()
    drawn: list[tuple[float, float]] = []

    def draw(low: float, high: float) -> float:
        drawn.append((low, high))
        return low

    write = CENTRE_COMMANDS.attempts(clock, draw)
    for _ in range(50):
        retry = write.after(ConcurrentChange("busy"))
        assert retry is not None
        assert (retry.delay, retry.outage) == (0.002, False)
    assert set(drawn) == {(0.002, 0.02)}
    clock.now += 30.001
    assert write.after(ConcurrentChange("busy")) is None


@pytest.mark.parametrize("policy", [CALL_FACTS, CENTRE_COMMANDS], ids=["facts", "centre"])
@pytest.mark.parametrize("error", [IllegalTransition("no"), ValueError("bug"), KeyError("k")])
def test_a_refusal_or_a_bug_is_never_retried(policy: RetryPolicy, error: Exception) -> None:
    assert attempts(policy, Clock()).after(error) is None


def test_each_lane_retries_only_its_own_kind_of_conflict() -> None:
    # A refused save on the call-centre lane is an outage-like failure (the
    # service has already retried its conflicts), ConcurrentChange on the
    # facts lane a refusal: as before the rule was shared.
    centre = attempts(CENTRE_COMMANDS, Clock()).after(IntegrityError())
    assert centre is not None
    assert centre.outage
    assert attempts(CALL_FACTS, Clock()).after(ConcurrentChange("busy")) is None


def test_the_storage_thread_takes_its_backoff_cap_into_the_rule() -> None:
    storage = StorageThread(CallService, max_backoff=0.5)
    delays = outage_delays(storage._retry, Clock(), limit=8)
    assert max(delays) == 0.5
    assert storage._retry.conflicts == CALL_FACTS.conflicts


def unreachable_store() -> CallService:
    """A call service on a loopback port nobody listens on: the store is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return CallService(env=eventsourcing_env(f"postgresql://postgres@127.0.0.1:{port}/none",
                                             POSTGRES_CONNECT_TIMEOUT="1"))


def test_a_storage_thread_stopped_in_an_outage_keeps_its_batch_buffered() -> None:
    storage = StorageThread(unreachable_store, max_backoff=0.05)
    storage.start()
    storage.put(InitiateCall.inbound(sip_call_id="down@pbx", caller="1", callee="2",
                                     occurred_at=datetime(2026, 1, 5, tzinfo=UTC)))
    deadline = time.monotonic() + 30
    while storage.stats.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert storage.stats.failures >= 2  # retried, not dropped
    assert not storage.healthy
    assert not storage.stop(timeout=0.5)  # the write is abandoned, not the command
    assert storage.pending == 1
    assert storage.stats.applied == storage.stats.overflow_dropped == 0
    # ... and the thread ends: it does not go on retrying the store after stop().
    storage._thread.join(10)
    assert not storage._thread.is_alive()


# The centre link on the rule.


class Flaky:
    """A command that fails with ``errors`` in turn, then returns 7."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, service: CallCentreService) -> int:
        assert isinstance(service, CallCentreService)
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return 7


def run(command: Callable[[CallCentreService], Any],
        retry: RetryPolicy = CENTRE_COMMANDS) -> tuple[Outcome[Any], CentreLink]:
    done = threading.Event()
    outcomes: list[Outcome[Any]] = []
    def heard(outcome: Outcome[Any]) -> None:
        outcomes.append(outcome)
        done.set()

    link = CentreLink(CallCentreService, lambda post: post(), retry=retry)
    link.start()
    try:
        link.submit("test command", command, heard)
        assert done.wait(20)
    finally:
        link.stop(timeout=20)
    return outcomes[0], link


def test_the_link_retries_an_outage_and_a_busy_queue_then_delivers_the_value() -> None:
    command = Flaky(psycopg.OperationalError("down"), ConcurrentChange("busy"),
                    OSError("reset"))
    outcome, link = run(command)
    assert outcome == WriteOutcome(value=7)
    assert command.calls == 4
    assert link.failures == 0


def test_the_link_answers_a_refusal_at_once() -> None:
    command = Flaky(IllegalTransition("offer timed out"))
    outcome, link = run(command)
    assert isinstance(outcome.error, IllegalTransition)
    assert command.calls == 1
    assert link.failures == 0


def test_the_link_gives_up_an_outage_past_its_limit_as_a_failure() -> None:
    command = Flaky(*[OSError("down")] * 50)
    outcome, link = run(command, replace(CENTRE_COMMANDS, max_outage_s=0.25))
    assert isinstance(outcome.error, RuntimeError)
    assert "store unreachable" in str(outcome.error)
    assert 2 <= command.calls < 50
    assert link.failures == 1


def test_the_link_gives_up_a_queue_that_stays_busy_without_counting_a_failure() -> None:
    command = Flaky(*[ConcurrentChange("busy")] * 10_000)
    outcome, link = run(command, replace(CENTRE_COMMANDS, max_outage_s=0.05))
    assert isinstance(outcome.error, ConcurrentChange)
    assert link.failures == 0


def test_a_command_nobody_waits_on_waits_the_outage_out() -> None:
    """An EndAgentCall, an Abandon, a MissOffer: given up after max_outage_s like a
    question, it was lost, and the agent stayed on the ended call for good."""
    command = Flaky(*[OSError("down")] * 8)
    link = CentreLink(CallCentreService, lambda post: post(),
                      retry=replace(CENTRE_COMMANDS, max_outage_s=0.05, max_backoff=0.05))
    link.start()
    try:
        link.submit("end the agent's call", command)  # no callback: nobody hears it
        deadline = time.monotonic() + 20
        while command.calls < 9 and time.monotonic() < deadline:  # bounded
            time.sleep(0.01)
    finally:
        link.stop(timeout=20)
    assert command.calls == 9  # the outage (8 failures, > 0.05 s) waited out, then written
    assert link.failures == 0


def test_a_stopping_link_gives_up_a_fact_still_waiting_on_the_store() -> None:
    command = Flaky(*[OSError("down")] * 10_000)
    link = CentreLink(CallCentreService, lambda post: post(),
                      retry=replace(CENTRE_COMMANDS, max_backoff=0.01))
    link.start()
    link.submit("abandon", command)
    link.stop(timeout=0.2)
    assert not link._thread.is_alive()
    assert link.failures == 1
