"""The registrations observer's loop (adapters/registrar/bindings.py): which failures
it rides out and which end it. ``observe_once`` is replaced by a script of outcomes;
what it would read (Redis, the store) is covered by tests/integration and tests/e2e."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import InterfaceError, OperationalError

from adapters.registrar.bindings import BindingsObserver


class ScriptedObserver(BindingsObserver):
    """Runs ``outcomes`` in turn (raise it, or return 0), then stops."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        super().__init__(service=Any, client=Any, dsn="", interval_s=0)  # type: ignore[arg-type]
        self.outcomes = outcomes
        self.calls = 0

    def observe_once(self) -> int:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if not self.outcomes:
            self.stop()
        if outcome is not None:
            raise outcome
        return 0


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"),
                                   InterfaceError("connection already closed")],
                         ids=["operational", "interface"])
def test_a_database_gone_mid_recording_is_retried_at_the_next_tick(
    error: BaseException,
) -> None:
    """eventsourcing raises its own errors (not psycopg's) when the database drops
    during a save; before, they ended the thread and `dialtone registrations` exited."""
    observer = ScriptedObserver([error, None])
    observer.run()
    assert observer.calls == 2
    assert observer.stopped


def test_a_bug_ends_the_loop_and_the_observer_is_not_taken_for_stopped() -> None:
    observer = ScriptedObserver([RuntimeError("bug"), None])
    run: Callable[[], None] = observer.run
    with pytest.raises(RuntimeError):
        run()
    assert observer.calls == 1
    assert not observer.stopped  # `dialtone registrations` then exits 1
