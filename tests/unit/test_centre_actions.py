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
