"""Call-control messages survive the NOTIFY channel, and refuse what it cannot carry."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.call_control import Action, ControlReply, ControlRequest


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
