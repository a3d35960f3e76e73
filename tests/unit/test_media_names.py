"""A recording's name means the same to the API, the domain and the workers
(domain.addressing.RECORDING_PATTERN): a name the API accepts is a file a worker
finds, one it cannot find is refused; and a media directory the worker may not
read is a file missing, so a caller still hears the default music or the melody
(adapters/media)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.media import player
from adapters.media.files import tenant_file
from adapters.media.player import MusicLibrary
from adapters.media.prompts import Prompts
from api.schemas.targets import RecordingTarget
from domain.addressing import Target
from domain.errors import InvalidValue
from tests.unit.test_prompts import write_pcm

FOUND = ["closed", "closed.wav", "night/closed", "v1.2/a-b_c", "promo/closed.", "9"]
NEVER_FOUND = ["promo/_closed", "promo/-closed", "a//b", "a/", "/a", ".a", "a/./b",
               "a/../b", "a..b", "a b", "a" * 129]


@pytest.mark.parametrize("name", FOUND)
def test_a_name_the_api_and_the_domain_accept_is_a_file_the_worker_finds(
        tmp_path: Path, name: str) -> None:
    assert RecordingTarget(kind="recording", value=name).value == name
    assert Target.recording(name).value == name
    file_name = name if name.endswith(".wav") else f"{name}.wav"
    wav = write_pcm(tmp_path / "tenants" / "acme" / "prompts" / file_name, 0.1)
    assert tenant_file(tmp_path, "acme", "prompts", name) == wav


@pytest.mark.parametrize("name", NEVER_FOUND)
def test_a_name_no_worker_could_find_is_refused_by_the_api_and_the_domain(
        tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError):
        RecordingTarget(kind="recording", value=name)
    with pytest.raises(InvalidValue):
        Target.recording(name)
    assert tenant_file(tmp_path, "acme", "prompts", name) is None


@pytest.fixture
def unreadable_acme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant acme's media directory may not be read by the worker (EACCES)."""
    real_stat = Path.stat

    def stat(self: Path, **kw: Any) -> Any:
        if "tenants/acme" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, **kw)

    monkeypatch.setattr(Path, "stat", stat)


class Music:
    """MusicOnHold without pjsua2: which file it would loop."""

    def __init__(self, wav: Path) -> None:
        self.wav = wav


@pytest.mark.usefixtures("unreadable_acme")
def test_music_the_worker_may_not_look_up_is_the_default_music(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(player, "MusicOnHold", Music)
    default = tmp_path / "default.wav"
    music = MusicLibrary(tmp_path, default).music("jazz", "acme")  # PermissionError before
    assert music.wav == default  # type: ignore[attr-defined]


@pytest.mark.usefixtures("unreadable_acme")
def test_a_prompt_the_worker_may_not_look_up_is_the_melody(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path)
    assert prompts.recording("closed", "acme") is None
    assert prompts.menu("welcome", "acme").path.parent == tmp_path / "prompts"
