"""The file a worker stopped in an outage keeps its unstored commands in
(adapters/sip/store/unstored.py): the same values back, in order; nothing to
keep removes it; anything else in it is refused rather than replayed."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sip.store import unstored
from domain.call_commands import EndCall, InitiateCall
from domain.values import Disposition, HangupSide


def test_kept_commands_come_back_equal_and_in_order(tmp_path: Path) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    begun = InitiateCall.inbound(sip_call_id="abc@host", caller="sip:1@a", callee="1000",
                                 occurred_at=now)
    ended = EndCall(call_id=begun.call_id, occurred_at=now, disposition=Disposition.ANSWERED,
                    hangup_cause="bye", hangup_side=HangupSide.CALLER, sip_status=None)
    path = unstored.unstored_path(tmp_path, "127.0.0.1", 5070)
    assert unstored.load(path) == []
    unstored.save(path, [begun, ended])
    assert unstored.load(path) == [begun, ended]
    assert not path.with_suffix(".partial").exists()
    unstored.save(path, [])
    assert not path.exists()


def test_a_file_without_call_commands_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unstored.pickle"
    path.write_bytes(pickle.dumps(["not a command"]))
    with pytest.raises(ValueError, match="does not hold call commands"):
        unstored.load(path)
