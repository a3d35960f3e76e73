"""The call-centre front's adapter (adapters/sip/sessions/centre_front.py) with a
fake caller leg: a prompt that cannot be made or played never leaves the caller
in silence (the menu goes on to its key wait), a G.711 recording is played, and a
recording an overflow names is the tenant's or a goodbye. No pjsua2 running."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from adapters.media.files import MULAW
from adapters.media.prompts import Prompt, Prompts
from adapters.sip.pjsua.legs import Leg
from adapters.sip.routing.directory import Directory
from adapters.sip.sessions.centre_front import CentreContext, CentreFront
from adapters.sip.sessions.session import Session, SessionContext
from application.b2bua import front as flow
from application.b2bua.front import Stage
from application.b2bua.legs import InboundFacts, LegRole
from domain.addressing import Target
from domain.call_commands import CallCommand
from domain.ivr import IvrMenu


class FakeLeg:
    """The caller's leg: no media yet, so a prompt waits for it (FrontAudio)."""

    def __init__(self) -> None:
        self.role, self.label, self.listener = LegRole.CALLER, "caller", None
        self.disconnected = self.confirmed = False
        self.did: list[object] = []

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:  # noqa: ARG002
        self.did.append(("respond", status))

    def end(self, status: int | None = None, headers: dict[str, str] | None = None  # noqa: ARG002
            ) -> None:
        self.did.append(("end", status))

    def audio(self) -> None:
        return None


class Timer:
    def cancel(self) -> None:
        pass


class NoPrompts(Prompts):
    """A media directory that cannot be written (full, read-only)."""

    def _generated(self, name: str, notes: list[tuple[float, float]]  # noqa: ARG002
                   ) -> Prompt:
        raise OSError(28, "No space left on device", name)


class Harness:
    def __init__(self, prompts: Prompts, *menus: IvrMenu) -> None:
        self.later: list[tuple[float, Callable[[], None]]] = []
        self.seen: list[Any] = []  # every action of the front's flow
        ctx = SessionContext(sink=self, new_leg=lambda _: cast(Leg, None), call_later=self._later,
                             no_answer_timeout=30.0, on_end=lambda _: None)
        self.session = Session(ctx, cast(Leg, FakeLeg()), InboundFacts("c@test", "1", "2"))
        directory = Directory()
        directory.menus.update({m.id: m for m in menus})
        centre = CentreContext(link=cast(Any, None), directory=directory,
                               resolve_number=lambda _: None, prompts=prompts,
                               music=cast(Any, None), reply=lambda _: None, free_legs=lambda: 1)
        self.front = CentreFront(self.session, centre, self.run)

    def run(self, actions: Any) -> None:
        for action in actions:
            self.seen.append(action)
            self.front.perform(action)  # (those it leaves to the call: not needed here)

    def put(self, command: CallCommand) -> None:
        pass

    def _later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        self.later.append((seconds, callback))
        return Timer()

    def fire_due(self) -> list[float]:
        """Run the callbacks due now; the delays of the timers started since."""
        due, self.later = [cb for s, cb in self.later if s == 0.0], \
            [(s, cb) for s, cb in self.later if s != 0.0]
        for callback in due:
            callback()
        return [s for s, _ in self.later]


def menu(prompt: str) -> IvrMenu:
    return IvrMenu.create("main", "Main", prompt, occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                          timeout_s=4.0)


def test_a_menu_prompt_that_cannot_be_made_goes_on_to_the_key_wait(tmp_path: Path) -> None:
    main = menu("welcome")
    h = Harness(NoPrompts(tmp_path), main)
    h.run(h.front.visit.go(Target.ivr(main.id)))  # no exception out of the PlayMenu
    assert h.front.stage is Stage.IVR
    assert h.fire_due() == [4.0]  # the prompt "ended": the menu's timeout for a key


def test_a_mulaw_recorded_prompt_is_played(tmp_path: Path) -> None:
    data = b"\xff" * 8000
    fmt = struct.pack("<HHIIHH", MULAW, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    recorded = tmp_path / "tenants" / "default" / "prompts" / "welcome.wav"
    recorded.parent.mkdir(parents=True)
    recorded.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    main = menu("welcome")
    h = Harness(Prompts(tmp_path), main)
    h.run(h.front.visit.go(Target.ivr(main.id)))  # wave.Error escaped here before
    assert h.front.audio.prompting  # waiting for the caller's media to play it
    assert h.fire_due() == []


def test_a_recording_the_tenant_does_not_have_says_goodbye(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "closed.wav").write_bytes(b"")  # the default tenant's, not acme's
    h = Harness(Prompts(tmp_path))
    h.front.stage = Stage.ANNOUNCING
    h.run([flow.PlayRecording("closed", "acme")])
    h.fire_due()
    assert h.seen[-1] == flow.Goodbye("recording_unavailable")
    assert h.front.stage is Stage.STARTING  # its tone waits for the caller's media
