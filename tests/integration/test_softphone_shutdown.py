"""The test and demo softphone (devtools/softphone.py) stops cleanly even when a call
is still up, its far end gone: before, the last Call died after pjsua was destroyed,
and pjsua's assertion aborted the phone (seen in CI when a worker died mid-call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.phones import phones
from tests.fixtures.sip import free_udp_port

pytestmark = pytest.mark.sip


def test_a_phone_told_to_quit_mid_call_after_its_far_end_died_exits_cleanly(
        tmp_path: Path) -> None:
    with phones() as start:
        alice = start("alice", free_udp_port(), tmp_path, args=["--answer-after", "0"])
        caller = start("caller", free_udp_port(), tmp_path)
        caller.send(f"dial {alice.uri}")
        caller.wait("state", state="CONFIRMED")
        alice.process.kill()  # no BYE, and none answered: the caller's call stays up
        alice.process.wait(10)

        caller.stop()

    assert caller.process.returncode == 0
    assert [e["event"] for e in caller.events][-1] == "stopped"
    assert "Assertion" not in (tmp_path / "phone-caller.log").read_text()
