"""What a recording holds: length, loudness, and whether a given tone is in it.

Standard library only (no audioop, removed in 3.13): RMS over 16-bit samples and
the Goertzel algorithm for the power at one frequency.
"""

from __future__ import annotations

import array
import math
import wave
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recording:
    rate: int
    samples: array.array[int]

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def window(self, start_s: float, end_s: float | None = None) -> Recording:
        first = int(start_s * self.rate)
        last = len(self.samples) if end_s is None else int(end_s * self.rate)
        return Recording(self.rate, self.samples[first:last])


def read(path: Path) -> Recording:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono, got {wav.getparams()}")
        pcm = array.array("h", wav.readframes(wav.getnframes()))
        return Recording(wav.getframerate(), pcm)


def rms(recording: Recording) -> float:
    """Root mean square of the samples (0 for silence, ~23000 for a full-scale sine)."""
    if not recording.samples:
        return 0.0
    return math.sqrt(sum(s * s for s in recording.samples) / len(recording.samples))


def tone_level(recording: Recording, frequency: float) -> float:
    """Goertzel: the amplitude of ``frequency`` in the recording, on the RMS scale
    (a pure sine of RMS r gives ~r)."""
    n = len(recording.samples)
    if n == 0:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * frequency / recording.rate)
    s1 = s2 = 0.0
    for sample in recording.samples:
        s1, s2 = sample + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return math.sqrt(max(power, 0.0) * 2) / n


def hears(recording: Recording, frequency: float, *, threshold: float = 300.0) -> bool:
    """Whether ``frequency`` is clearly present (a tone well above line noise)."""
    return tone_level(recording, frequency) > threshold


def tones_heard(recording: Recording, frequencies: list[float], *, window_s: float = 0.25,
                threshold: float = 1000.0) -> set[float]:
    """The frequencies heard loud in at least one ``window_s`` slice (melodies,
    beeps: tones that come and go)."""
    heard: set[float] = set()
    start = 0.0
    while start + window_s <= recording.seconds:
        part = recording.window(start, start + window_s)
        heard |= {f for f in frequencies if tone_level(part, f) > threshold}
        start += window_s
    return heard
