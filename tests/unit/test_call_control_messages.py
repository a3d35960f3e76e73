"""Call-control messages survive the NOTIFY channel, and refuse what it cannot carry."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.call_control import Action, AuditLink, ControlReply, ControlRequest


def test_a_request_and_its_reply_round_trip() -> None:
    request = ControlRequest("r1", uuid4(), Action.SUPERVISE,
                             {"supervisor": "sam", "mode": "whisper", "device": "sip:s@h"})
    reply = ControlReply("r1", 202, "calling", {"state": "calling"})
    assert ControlRequest.decode(request.encode()) == request
    assert ControlReply.decode(reply.encode()) == reply


def test_a_message_too_large_for_notify_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        ControlRequest("r1", uuid4(), Action.TRANSFER, {"target_value": "x" * 9000}).encode()


def test_an_unknown_action_does_not_decode() -> None:
    text = ControlRequest("r1", uuid4(), Action.TRANSFER).encode().replace("transfer", "explode")
    with pytest.raises(ValueError, match="explode"):
        ControlRequest.decode(text)


def test_a_request_names_the_audit_row_of_the_api_command_behind_it() -> None:
    call_id = uuid4()
    request = ControlRequest("c1", call_id, Action.UNSUPERVISE, {"supervisor": "sam"},
                             origin="leave-1")
    decoded = ControlRequest.decode(request.encode())
    assert decoded.audit == AuditLink(call_id, "c1", "leave-1")
    # A request without one (an older API) causes events no row is linked to.
    older = request.encode().replace(',"origin":"leave-1"', "")
    assert "origin" not in older
    assert ControlRequest.decode(older).audit is None
