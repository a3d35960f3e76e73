"""The call-centre front's adapter (adapters/sip/sessions/centre_front.py) with a
fake caller leg and timers that remember being cancelled: the callback of a prompt
that could not be made or played is cancelled by a key like a played prompt's end,
and a stage timer started again cancels the one it replaces, so a stale callback
never starts the next menu's key wait early nor leaves a second one armed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pjsua2 as pj
import pytest

from adapters.media.prompts import Prompt, Prompts
from adapters.sip.sessions import centre_front
from adapters.sip.sessions.centre_front import FrontAudio
from application.b2bua import actions as act
from application.b2bua.legs import Timer
from domain.addressing import Target
from domain.ivr import IvrMenu
from tests.unit.test_sip_centre_front_prompts import Harness, menu

T0 = datetime(2026, 1, 1, tzinfo=UTC)

class Handle:
    def __init__(self, seconds: float, callback: Callable[[], None]) -> None:
        self.seconds, self.callback, self.cancelled = seconds, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """A call_later whose handles are kept."""

    def __init__(self) -> None:
        self.handles: list[Handle] = []

    def __call__(self, seconds: float, callback: Callable[[], None]) -> Handle:
        self.handles.append(Handle(seconds, callback))
        return self.handles[-1]

    def armed(self, seconds: float) -> list[Handle]:
        return [h for h in self.handles if h.seconds == seconds and not h.cancelled]


def harness(prompts: Prompts, *menus: IvrMenu) -> tuple[Harness, Timers]:
    h, timers = Harness(prompts, *menus), Timers()
    h.session.ctx.call_later = timers
    h.front.audio = FrontAudio(h.session.a, timers)
    return h, timers


class FirstMenuFails(Prompts):
    """Menu a's prompt cannot be made (a full or read-only media directory)."""

    def menu(self, prompt: str, tenant: str) -> Prompt:  # noqa: ARG002
        if prompt == "a-prompt":
            raise OSError(28, "No space left on device")
        return Prompt(Path("/nonexistent/b.wav"), 2.0)


def test_a_key_cancels_the_callback_of_a_prompt_that_could_not_be_made(
        tmp_path: Path) -> None:
    a, b = menu("a-prompt"), IvrMenu.create("b", "B", "b-prompt", occurred_at=T0, timeout_s=4.0)
    a.set_option("1", Target.ivr(b.id), T0)
    h, timers = harness(FirstMenuFails(tmp_path), a, b)
    h.run(h.front.visit.go(Target.ivr(a.id)))  # a's prompt is skipped: "said" at once
    [skipped] = timers.armed(0.0)
    h.run(h.front.visit.key_pressed(h.session.a, "1"))  # before that ran: menu b
    assert skipped.cancelled  # a's "prompt said" never starts b's key wait
    assert h.front.audio.prompting  # b's prompt, to play when the caller's media is up
    assert timers.armed(4.0) == []


def test_a_stage_timer_started_again_cancels_the_one_it_replaces(tmp_path: Path) -> None:
    h, timers = harness(Prompts(tmp_path))
    h.front.perform(act.StartTimer(Timer.KEY_WAIT, 4.0))
    h.front.perform(act.StartTimer(Timer.KEY_WAIT, 4.0))
    first, second = timers.handles
    assert first.cancelled
    assert not second.cancelled
    h.front.perform(act.CancelTimer(Timer.KEY_WAIT))
    assert second.cancelled


class Port:
    def getPortId(self) -> int:  # noqa: N802 (pjsua2's name)
        return 7


class MediaLeg:
    def audio(self) -> Port:
        return Port()


def test_stopping_a_prompt_pjsua2_could_not_play_cancels_its_callback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise pj.Error(70001, "createPlayer", "no port left", "player.cpp", 1)

    monkeypatch.setattr(centre_front, "PromptPlayer", refused)
    timers, heard = Timers(), list[str]()
    audio = FrontAudio(MediaLeg(), timers)  # type: ignore[arg-type]  # (a fake leg)
    audio.play(Prompt(Path("/nonexistent/a.wav"), 2.0), lambda: heard.append("said"))
    [failed] = timers.armed(0.0)
    audio.stop_prompt()  # a key: the next menu
    assert failed.cancelled
    assert heard == []
