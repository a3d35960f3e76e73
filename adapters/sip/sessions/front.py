"""What a caller hears while the platform, not a person, holds the line:
prompts (one at a time, interruptible) and music on hold underneath.

The caller's audio port may not exist yet when a prompt is asked for (media
comes up with the SDP answer, or with the ACK of a late offer), and a
re-INVITE may give it a new port: ``refresh`` (called on every media change)
connects what should be playing to the port the leg has now. A prompt's end
is timed from its known length, starting when it really starts playing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pjsua2 as pj

from adapters.media.player import PromptPlayer
from adapters.media.prompts import Prompt
from adapters.sip.pjsua.legs import Leg
from adapters.sip.sessions.session import AudioSource, TimerHandle

log = logging.getLogger(__name__)

Later = Callable[[float, Callable[[], None]], TimerHandle]


class FrontAudio:
    def __init__(self, leg: Leg, call_later: Later) -> None:
        self._leg = leg
        self._later = call_later
        self._music: AudioSource | None = None  # wanted
        self._music_on: tuple[AudioSource, int] | None = None  # playing, to which bridge slot
        self._pending: tuple[Prompt, Callable[[], None]] | None = None
        self._prompt: PromptPlayer | None = None
        self._prompt_timer: TimerHandle | None = None

    @property
    def prompting(self) -> bool:
        return self._prompt is not None or self._pending is not None

    def play(self, prompt: Prompt, then: Callable[[], None]) -> None:
        """Play ``prompt`` (music pauses), then call ``then``."""
        self.stop_prompt()
        self._pending = (prompt, then)
        self.refresh()

    def music(self, source: AudioSource | None) -> None:
        self._music = source
        self.refresh()

    def stop_prompt(self) -> None:
        self._pending = None
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None
        if self._prompt is not None:
            self._prompt.stop()
            self._prompt = None

    def silence(self) -> None:
        """Stop everything (the caller is about to talk to someone, or leave)."""
        self.stop_prompt()
        self._music = None
        self._apply_music(None)

    def refresh(self) -> None:
        audio = self._leg.audio()
        if audio is None:
            return  # no media yet: done again from the next media callback
        if self._pending is not None:
            self._start_prompt(audio)
        self._apply_music(None if self._prompt is not None else (self._music, audio))

    def _start_prompt(self, audio: pj.AudioMedia) -> None:
        assert self._pending is not None
        prompt, then = self._pending
        self._pending = None
        self._apply_music(None)
        try:
            self._prompt = PromptPlayer(prompt.path, audio)
        except pj.Error as error:
            log.error("cannot play %s: %s", prompt.path, error.info())
            self._later(0.0, then)
            return

        def ended() -> None:
            self._prompt_timer = None
            if self._prompt is not None:
                self._prompt.stop()
                self._prompt = None
            self.refresh()  # the music comes back
            then()
        self._prompt_timer = self._later(prompt.seconds, ended)

    def _apply_music(self, wanted: tuple[AudioSource | None, pj.AudioMedia] | None) -> None:
        source, audio = wanted if wanted is not None else (None, None)
        slot = int(audio.getPortId()) if audio is not None else -1
        if self._music_on is not None and (source, slot) != self._music_on:
            playing, _ = self._music_on
            current = self._leg.audio()
            if current is not None:
                playing.stop_to(current)
            self._music_on = None
        if source is not None and audio is not None:
            source.play_to(audio)
            self._music_on = (source, slot)
