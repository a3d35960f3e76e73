"""Audio the platform generates itself (no downloaded media): 16-bit mono WAV
files of tones, written with the standard library only."""

from __future__ import annotations

import array
import math
import os
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

RATE = 8000  # narrowband: what G.711 carries, so nothing is resampled per call

# A slow, quiet arpeggio (A major, then a rest): recognisably "on hold", never
# mistaken for a ringback or busy tone.
HOLD_MELODY: tuple[tuple[float, float], ...] = (
    (440.0, 0.4), (554.37, 0.4), (659.25, 0.4), (880.0, 0.6), (0.0, 0.4),
    (659.25, 0.4), (554.37, 0.4), (440.0, 0.8), (0.0, 0.8),
)


def tone_samples(frequency: float, seconds: float, *, amplitude: float = 0.25,
                 rate: int = RATE) -> array.array[int]:
    """A sine tone (0 Hz: silence) with 10 ms fades so notes do not click."""
    count = int(seconds * rate)
    fade = max(1, int(0.01 * rate))
    peak = amplitude * 32767
    samples = array.array("h", bytes(2 * count))
    if frequency <= 0:
        return samples
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples[i] = int(peak * envelope * math.sin(2 * math.pi * frequency * i / rate))
    return samples


def write_wav(path: Path, notes: Sequence[tuple[float, float]], *, rate: int = RATE) -> Path:
    """Write ``notes`` ((frequency Hz, seconds), ...) as a mono 16-bit WAV file.

    The file appears whole or not at all: it is written under a temporary name in
    the same directory and renamed into place. A pool's workers share the media
    directory and write the same default files at the same moment; one that found
    the file half-written by another could not play it (PJMEDIA_ENOTVALIDWAVE)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = array.array("h")
    for frequency, seconds in notes:
        pcm.extend(tone_samples(frequency, seconds, rate=rate))
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                     suffix=".tmp", delete=False) as tmp:
        try:
            with wave.open(tmp, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(rate)
                out.writeframes(pcm.tobytes())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.chmod(tmp.name, 0o644)  # as a plain open() makes it; the temporary file is 0600
    os.replace(tmp.name, path)  # atomic within one file system
    return path


def hold_music(path: Path) -> Path:
    """The default music-on-hold file, written once and reused."""
    if not path.exists():
        write_wav(path, HOLD_MELODY)
    return path
