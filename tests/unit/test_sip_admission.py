"""The key budget that keeps an INVITE burst from exhausting pjsua's media ioqueue."""

from __future__ import annotations

import pytest

from adapters.sip.pjsua.admission import IOQUEUE_KEYS, KEYS_PER_CALL, RESERVE_KEYS, KeyBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_room_runs_out_when_closed_and_live_calls_reach_the_limit() -> None:
    clock = Clock()
    budget = KeyBudget(4, window=0.55, clock=clock)
    live = 2
    for _ in range(budget.limit - live - 1):
        budget.closed()
    assert budget.has_room(live)
    budget.closed()
    assert not budget.has_room(live)
    assert budget.has_room(live - 1)  # fewer live calls that may close unasked
    assert budget.wait_hint(live) == pytest.approx(0.55)


def test_room_comes_back_when_closed_calls_leave_the_window() -> None:
    clock = Clock()
    budget = KeyBudget(4, window=0.55, clock=clock)
    budget.closed()
    clock.now += 0.3
    for _ in range(budget.limit - 2):
        budget.closed()
    assert not budget.has_room(1)
    assert budget.wait_hint(1) == pytest.approx(0.25)  # the first one leaves first
    clock.now += 0.25
    assert budget.has_room(1)
    clock.now += 0.3
    assert budget.closing() == 0


def test_the_worst_case_never_needs_more_keys_than_the_ioqueue_has() -> None:
    # The last act allowed with room, then every live call closing unasked,
    # then pjsua filling every slot with a new INVITE's transport:
    budget = KeyBudget(4)
    for live in range(1, budget.slots + 1):
        closing = budget.limit - live - 1  # the most that still leaves room
        worst = closing + live + 1 + budget.slots
        assert KEYS_PER_CALL * worst <= IOQUEUE_KEYS - RESERVE_KEYS


def test_a_budget_that_cannot_serve_its_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot serve"):
        KeyBudget(12)
