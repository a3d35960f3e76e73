"""Generated prompts: what each one plays and how long it lasts."""

from __future__ import annotations

import wave
from pathlib import Path

from adapters.media.prompts import BEEP_HZ, MAX_BEEPS, Prompts, menu_notes, position_notes


def beeps(notes: list[tuple[float, float]]) -> int:
    return sum(1 for frequency, _ in notes if frequency == BEEP_HZ)


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


def test_a_recorded_prompt_in_the_media_directory_is_played_instead(tmp_path: Path) -> None:
    generated = Prompts(tmp_path).menu("main-menu")
    recorded = tmp_path / "prompts" / "main-menu.wav"
    with wave.open(str(recorded), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * 12000)
    chosen = Prompts(tmp_path).menu("main-menu")
    assert generated.path != recorded
    assert (chosen.path, chosen.seconds) == (recorded, 1.5)
    assert Prompts(tmp_path).menu("Press 1 for sales").path != recorded  # text, not a name
