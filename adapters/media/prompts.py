"""Prompts the platform speaks without a speech synthesiser: generated tone patterns.

No media is downloaded and no text-to-speech engine is assumed, so every
prompt is a recognisable pattern of tones (8 kHz mono WAV, like the music on
hold), written once under the media directory and reused:

* an IVR menu's prompt: a short melody derived from the prompt text (the same
  text always gives the same melody, different menus sound different), unless
  the menu's tenant has a recording of that name (``files.tenant_file``:
  ``tenants/<tenant>/prompts/<prompt>.wav``), which is played instead (real
  recordings can be dropped in; one the media bridge cannot play, or whose
  header cannot be read, is logged and the melody plays);
* a recording a queue's overflow names: the tenant's file of that name only;
* a queue position: N short beeps for position N (capped, so a long queue does
  not take a minute to announce);
* goodbye: two falling notes before the platform hangs up.

Durations are computed from the notes (a recording's from its RIFF header), so a
session knows when a prompt ends without waiting for the player's end-of-file
callback.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from adapters.media.files import read_wav, tenant_file
from adapters.media.tones import write_wav

log = logging.getLogger(__name__)

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
    """Generated prompts under ``<media>/prompts``; the tenants' recorded ones."""

    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir
        self.directory = media_dir / "prompts"

    def menu(self, prompt: str, tenant: str) -> Prompt:
        """A menu of ``tenant``'s prompt: its recording of that name, else the melody."""
        recorded = self.recording(prompt, tenant) if _SAFE_NAME.fullmatch(prompt) else None
        if recorded is not None:
            return recorded
        name = "menu-" + hashlib.sha256(prompt.encode()).hexdigest()[:16]
        return self._generated(name, menu_notes(prompt))

    def recording(self, name: str, tenant: str) -> Prompt | None:
        """``tenant``'s recording ``name``, if it has one the media bridge can play."""
        path = tenant_file(self.media_dir, tenant, "prompts", name)
        if path is None:
            return None
        try:
            wav = read_wav(path)
        except (OSError, ValueError) as error:
            log.warning("prompt %s cannot be read (%s): not played", path, error)
            return None
        if not wav.playable:
            log.warning("prompt %s is %s, which the media bridge cannot play (16-bit PCM, "
                        "A-law or mu-law WAV): not played", path, wav.describe())
            return None
        return Prompt(path, wav.seconds)

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
