"""Generated WAV files: valid, narrowband mono, the tones they claim."""

from __future__ import annotations

import array
import itertools
import math
import wave
from pathlib import Path

import pytest

from adapters.media.tones import HOLD_MELODY, RATE, hold_music, tone_samples, write_wav


def test_hold_music_is_a_mono_16_bit_8khz_wav_of_the_melody(tmp_path: Path) -> None:
    path = hold_music(tmp_path / "media" / "moh.wav")

    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        expected = sum(int(seconds * RATE) for _, seconds in HOLD_MELODY)
        assert wav.getnframes() == expected


def test_a_tone_has_its_frequency_and_silence_is_silent(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "t.wav", [(1000.0, 0.5), (0.0, 0.1)])

    with wave.open(str(path)) as wav:
        pcm = array.array("h", wav.readframes(wav.getnframes()))
    tone, silence = pcm[: RATE // 2], pcm[RATE // 2 :]
    crossings = sum(1 for a, b in itertools.pairwise(tone) if a < 0 <= b)
    assert abs(crossings - 500) <= 2  # 1000 Hz for 0.5 s
    assert not any(silence)


def test_tones_fade_in_and_out_and_stay_within_amplitude() -> None:
    samples = tone_samples(440.0, 0.2, amplitude=0.5)

    assert samples[0] == 0
    assert abs(samples[-1]) < 200
    assert max(abs(s) for s in samples) <= math.ceil(0.5 * 32767)


def test_a_wav_interrupted_while_written_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool's workers write the same default files at once: a reader must find a
    file whole or not at all, never the header of one still being written."""

    def fail(self: wave.Wave_write, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(wave.Wave_write, "writeframes", fail)
    with pytest.raises(OSError, match="disk full"):
        write_wav(tmp_path / "moh.wav", HOLD_MELODY)

    assert list(tmp_path.iterdir()) == []


def test_a_wav_rewritten_replaces_the_old_one_whole(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "t.wav", [(440.0, 0.5)])
    write_wav(path, [(440.0, 0.25)])

    with wave.open(str(path)) as wav:
        assert wav.getnframes() == RATE // 4
    assert [p.name for p in tmp_path.iterdir()] == ["t.wav"]
