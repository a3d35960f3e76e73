"""Prompts: what each generated one plays and how long it lasts; the recorded ones
a tenant drops in (G.711 included), each tenant's its own (adapters/media)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from adapters.media.files import ALAW, EXTENSIBLE, MULAW, PCM, read_wav, tenant_file
from adapters.media.prompts import BEEP_HZ, MAX_BEEPS, Prompts, menu_notes, position_notes


def beeps(notes: list[tuple[float, float]]) -> int:
    return sum(1 for frequency, _ in notes if frequency == BEEP_HZ)


def write_riff(path: Path, tag: int, bits: int, seconds: float, rate: int = 8000,
               extra: bytes = b"") -> Path:
    """A RIFF WAVE file of any format (the standard library writes PCM only), with a
    LIST chunk before the data as editors write them."""
    block = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * block, block, bits) + extra
    data = bytes([0x55]) * int(seconds * rate * block)
    chunks = [(b"fmt ", fmt), (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00\x00"), (b"data", data)]
    body = b"WAVE" + b"".join(n + struct.pack("<I", len(c)) + c + b"\0" * (len(c) % 2)
                              for n, c in chunks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def write_pcm(path: Path, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * seconds))
    return path


def test_a_position_is_that_many_beeps_capped() -> None:
    assert beeps(position_notes(1)) == 1
    assert beeps(position_notes(4)) == 4
    assert beeps(position_notes(40)) == MAX_BEEPS


def test_the_same_prompt_text_always_sounds_the_same_and_another_differs() -> None:
    assert menu_notes("welcome") == menu_notes("welcome")
    assert menu_notes("welcome") != menu_notes("sales menu")


def test_a_prompt_file_lasts_as_long_as_its_duration_says(tmp_path: Path) -> None:
    prompt = Prompts(tmp_path).position(3)
    with wave.open(str(prompt.path)) as wav:
        assert wav.getnframes() / wav.getframerate() == prompt.seconds
    assert read_wav(prompt.path).seconds == prompt.seconds


def test_a_recorded_prompt_in_the_media_directory_is_played_instead(tmp_path: Path) -> None:
    generated = Prompts(tmp_path).menu("main-menu", "default")
    recorded = write_pcm(tmp_path / "prompts" / "main-menu.wav", 1.5)
    chosen = Prompts(tmp_path).menu("main-menu", "default")
    assert generated.path != recorded
    assert (chosen.path, chosen.seconds) == (recorded, 1.5)
    # text, not a name
    assert Prompts(tmp_path).menu("Press 1 for sales", "default").path != recorded


@pytest.mark.parametrize(("tag", "bits"), [(MULAW, 8), (ALAW, 8), (PCM, 16)])
def test_a_g711_prompt_plays_for_as_long_as_its_header_says(
        tmp_path: Path, tag: int, bits: int) -> None:
    """mu-law and A-law are what telephony prompt recordings usually are; the
    standard library's wave refuses them (wave.Error), and the menu never went on."""
    recorded = write_riff(tmp_path / "prompts" / "welcome.wav", tag, bits, 1.25)
    prompt = Prompts(tmp_path).menu("welcome", "default")
    assert (prompt.path, prompt.seconds) == (recorded, 1.25)


@pytest.mark.parametrize("content", ["extensible", "pcm8", "not-riff", "no-data"])
def test_a_prompt_the_bridge_cannot_play_gives_the_generated_melody(
        tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "prompts" / "welcome.wav"
    if content == "extensible":  # pjmedia refuses WAVE_FORMAT_EXTENSIBLE
        write_riff(path, EXTENSIBLE, 16, 1.0, extra=struct.pack("<HHI", 22, 16, 4) + b"\1" * 16)
    elif content == "pcm8":
        write_riff(path, PCM, 8, 1.0)
    elif content == "not-riff":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"ID3\x04" + b"\0" * 100)
    else:
        write_riff(path, MULAW, 8, 1.0)
        path.write_bytes(path.read_bytes()[:60])  # cut before its data
    prompt = Prompts(tmp_path).menu("welcome", "default")
    assert prompt.path != path
    assert math.isclose(prompt.seconds, sum(s for _, s in menu_notes("welcome")), abs_tol=0.01)
    assert "welcome.wav" in caplog.text
    assert Prompts(tmp_path).recording("welcome", "default") is None


def test_each_tenant_hears_only_its_own_recorded_prompts(tmp_path: Path) -> None:
    acme = write_pcm(tmp_path / "tenants" / "acme" / "prompts" / "welcome.wav", 1.0)
    shared = write_pcm(tmp_path / "prompts" / "hours.wav", 2.0)
    prompts = Prompts(tmp_path)
    assert prompts.menu("welcome", "acme").path == acme
    assert prompts.menu("welcome", "globex").path != acme  # globex's own melody
    assert prompts.menu("welcome", "default").path != acme
    # The shared directory of before tenants is the default tenant's alone.
    assert prompts.menu("hours", "default").path == shared
    assert prompts.menu("hours", "acme").path != shared
    assert prompts.recording("hours", "acme") is None
    assert prompts.recording("welcome", "globex") is None


def test_the_default_tenants_own_directory_comes_before_the_shared_one(tmp_path: Path) -> None:
    own = write_pcm(tmp_path / "tenants" / "default" / "prompts" / "hours.wav", 1.0)
    write_pcm(tmp_path / "prompts" / "hours.wav", 2.0)
    assert Prompts(tmp_path).menu("hours", "default").path == own


def test_a_recording_is_named_with_or_without_its_extension_and_stays_in_its_directory(
        tmp_path: Path) -> None:
    closed = write_riff(tmp_path / "tenants" / "acme" / "prompts" / "closed.wav", ALAW, 8, 3.0)
    night = write_pcm(tmp_path / "tenants" / "acme" / "prompts" / "night" / "closed.wav", 1.0)
    prompts = Prompts(tmp_path)
    assert prompts.recording("closed", "acme") == prompts.recording("closed.wav", "acme")
    assert prompts.recording("closed", "acme").seconds == 3.0  # type: ignore[union-attr]
    assert prompts.recording("night/closed", "acme").path == night  # type: ignore[union-attr]
    assert closed.exists()
    for name in ("../acme/prompts/closed", "/etc/passwd", "night/../closed", ""):
        assert tenant_file(tmp_path, "acme", "prompts", name) is None
    assert tenant_file(tmp_path / "tenants" / "acme" / "x", "..", "prompts", "closed") is None


def test_music_on_hold_files_are_looked_up_per_tenant_too(tmp_path: Path) -> None:
    jazz = write_pcm(tmp_path / "tenants" / "acme" / "moh" / "jazz.wav", 1.0)
    shared = write_pcm(tmp_path / "moh" / "rock.wav", 1.0)
    assert tenant_file(tmp_path, "acme", "moh", "jazz") == jazz
    assert tenant_file(tmp_path, "globex", "moh", "jazz") is None
    assert tenant_file(tmp_path, "default", "moh", "rock") == shared
    assert tenant_file(tmp_path, "acme", "moh", "rock") is None
