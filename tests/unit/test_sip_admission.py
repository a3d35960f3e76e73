"""The key budget that keeps an INVITE burst from exhausting pjsua's media ioqueue."""

from __future__ import annotations

import pytest

from adapters.sip.admission import IOQUEUE_KEYS, KEYS_PER_CALL, KeyBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_room_runs_out_after_limit_calls_closed_within_the_window() -> None:
    clock = Clock()
    budget = KeyBudget(4, window=0.75, clock=clock)
    for _ in range(budget.limit - 1):
        budget.closed()
    assert budget.has_room()
    budget.closed()
    assert not budget.has_room()
    assert budget.wait_hint() == pytest.approx(0.75)


def test_room_comes_back_when_closed_calls_leave_the_window() -> None:
    clock = Clock()
    budget = KeyBudget(4, window=0.75, clock=clock)
    for _ in range(budget.limit):
        budget.closed()
    clock.now += 0.5
    assert not budget.has_room()
    assert budget.wait_hint() == pytest.approx(0.25)
    clock.now += 0.25
    assert budget.has_room()
    assert budget.closing() == 0


def test_the_worst_case_never_needs_more_keys_than_the_ioqueue_has() -> None:
    # Acting only with room, then every slot closing and refilling at once:
    budget = KeyBudget(4)
    worst_closing = budget.limit + budget.slots  # the last act, plus every live call
    worst_live = budget.slots  # slots refilled by pjsua with new INVITEs
    assert KEYS_PER_CALL * (worst_closing + worst_live) <= IOQUEUE_KEYS


def test_a_budget_that_cannot_serve_its_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot serve"):
        KeyBudget(16)
