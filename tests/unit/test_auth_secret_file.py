"""The first admin's password file is readable by its owner only, whatever was there."""

from __future__ import annotations

import stat
from pathlib import Path

from dialtone.commands.users import write_secret_file


def test_a_new_file_is_created_0600(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "secret"
    write_secret_file(path, "s3cret")
    assert path.read_text() == "s3cret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_wider_file_is_narrowed_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("an older and longer secret")
    path.chmod(0o644)
    write_secret_file(path, "new")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
