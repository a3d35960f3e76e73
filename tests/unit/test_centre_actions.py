"""adapters.sip.sessions.centre_actions.handle: every control request gets a reply.
A waiting caller moved to a "number" that is none raised InvalidValue out of it (a
DomainError, not the ValueError it caught): no reply, so the API waited its timeout
and answered 503 "no B2BUA worker answered" instead of 422."""

from __future__ import annotations

from types import SimpleNamespace

from adapters.sip.sessions import centre_actions
from application.b2bua.front import Stage
from tests.unit.test_b2bua_transfers import request, transfers


def test_a_waiting_caller_moved_to_a_malformed_number_is_a_422() -> None:
    flow, _ = transfers(Stage.QUEUE)
    lane = SimpleNamespace(transfers=flow, cause=None)
    reply = centre_actions.handle(lane, request("blind", "number", "not a number"))  # type: ignore[arg-type]
    assert reply.status == 422
    assert "not a number" in reply.detail


def test_a_blind_transfer_on_a_full_worker_is_refused_and_the_call_left_alone() -> None:
    """It answered 202, let the agent go, then could not place the new leg (the agent's
    slot frees only later) and hung the caller up: the attended one answers 503."""
    flow, _ = transfers()
    performed: list[str] = []
    lane = SimpleNamespace(transfers=flow, cause=None,
                           centre=SimpleNamespace(free_legs=lambda: 0),
                           release_agent=lambda: performed.append("release"),
                           dial_after_transfer=performed.append)
    reply = centre_actions.handle(lane, request("blind", "number", "2000"))  # type: ignore[arg-type]
    assert reply.status == 503
    assert performed == []
