"""Prompts the platform speaks without a speech synthesiser: generated tone patterns.

No media is downloaded and no text-to-speech engine is assumed, so every
prompt is a recognisable pattern of tones (8 kHz mono WAV, like the music on
hold), written once under the media directory and reused:

* an IVR menu's prompt: a short melody derived from the prompt text (the same
  text always gives the same melody, different menus sound different), unless
  ``prompts/<prompt>.wav`` exists there, which is played instead (real
  recordings can be dropped in);
* a queue position: N short beeps for position N (capped, so a long queue does
  not take a minute to announce);
* goodbye: two falling notes before the platform hangs up.

Durations are computed from the notes, so a session knows when a prompt ends
without waiting for the player's end-of-file callback.
"""

from __future__ import annotations

import hashlib
import re
import wave
from dataclasses import dataclass
from pathlib import Path

from adapters.media.tones import write_wav

Notes = list[tuple[float, float]]
# A pentatonic scale: any sequence of its notes sounds deliberate.
SCALE = (523.25, 587.33, 659.25, 783.99, 880.0, 1046.5)
BEEP_HZ = 1400.0
MAX_BEEPS = 9
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Prompt:
    path: Path
    seconds: float


def menu_notes(text: str) -> Notes:
    """Four notes picked by the prompt text's hash, then a short pause."""
    digest = hashlib.sha256(text.encode()).digest()
    notes = [(SCALE[byte % len(SCALE)], 0.22) for byte in digest[:4]]
    return [(0.0, 0.2), *notes, (0.0, 0.3)]


def position_notes(position: int) -> Notes:
    """One beep per place in the queue (at most ``MAX_BEEPS``)."""
    beeps: Notes = [(0.0, 0.3)]
    for _ in range(max(1, min(position, MAX_BEEPS))):
        beeps += [(BEEP_HZ, 0.12), (0.0, 0.18)]
    return [*beeps, (0.0, 0.3)]


GOODBYE: Notes = [(0.0, 0.2), (659.25, 0.3), (440.0, 0.5), (0.0, 0.2)]


def _seconds(notes: Notes) -> float:
    return sum(int(seconds * 8000) for _, seconds in notes) / 8000


class Prompts:
    """The prompt files under ``<media>/prompts``."""

    def __init__(self, media_dir: Path) -> None:
        self.directory = media_dir / "prompts"

    def menu(self, prompt: str) -> Prompt:
        recorded = self._recorded(prompt)
        if recorded is not None:
            return recorded
        name = "menu-" + hashlib.sha256(prompt.encode()).hexdigest()[:16]
        return self._generated(name, menu_notes(prompt))

    def position(self, position: int) -> Prompt:
        count = max(1, min(position, MAX_BEEPS))
        return self._generated(f"position-{count}", position_notes(count))

    def goodbye(self) -> Prompt:
        return self._generated("goodbye", GOODBYE)

    def _generated(self, name: str, notes: Notes) -> Prompt:
        path = self.directory / f"{name}.wav"
        if not path.exists():
            write_wav(path, notes)
        return Prompt(path, _seconds(notes))

    def _recorded(self, prompt: str) -> Prompt | None:
        if not _SAFE_NAME.fullmatch(prompt):
            return None  # prompt text, not a file name
        path = self.directory / f"{prompt}.wav"
        if not path.is_file():
            return None
        with wave.open(str(path)) as wav:
            return Prompt(path, wav.getnframes() / wav.getframerate())
