"""A new call command is its value and its aggregate method, no line in the service:
every value of domain.call_commands registers itself, and CallService has a
per-command method for each, named for it and running ``handle``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.calls import CallService, method_name
from domain import call_commands
from domain.call import Call
from domain.call_commands import COMMANDS, CallCommand, InitiateCall, RouteCall
from domain.values import Direction

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
CID = Call.id_for("registry@pbx")


def test_every_command_value_is_registered_once_in_definition_order() -> None:
    defined = [value for value in vars(call_commands).values()
               if isinstance(value, type) and issubclass(value, CallCommand)
               and value is not CallCommand]
    assert defined == COMMANDS


@pytest.mark.parametrize("command", [c for c in COMMANDS if c is not InitiateCall],
                         ids=lambda c: c.__name__)
def test_each_registered_command_has_its_generated_service_method(
        command: type[CallCommand]) -> None:
    method = vars(CallService)[method_name(command)]
    assert method.__name__ == method_name(command)
    assert command.__name__ in (method.__doc__ or "")


def test_method_names_are_the_class_names_in_snake_case() -> None:
    names = {method_name(c) for c in COMMANDS}
    assert {"end_call", "hold_call", "connect_agent", "record_media_quality",
            "start_supervision", "store_recording", "initiate_call"} <= names


def test_initiate_call_stays_the_written_method_that_returns_the_id() -> None:
    service = CallService()
    call_id = service.initiate_call(caller="1", callee="2", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id="registry@pbx", occurred_at=T0)
    assert call_id == CID


def test_a_generated_method_runs_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    handled: list[CallCommand] = []
    service = CallService()
    monkeypatch.setattr(service, "handle", handled.append)
    service.route_call(CID, "sales", T0 + timedelta(seconds=1))
    assert handled == [RouteCall(CID, T0 + timedelta(seconds=1), "sales")]
