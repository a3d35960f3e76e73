"""`dialtone restore` refuses what it cannot restore faithfully, before touching the database."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg

from dialtone.services import pg_tools
from tests.fixtures.processes import DIALTONE


def _dialtone(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DIALTONE), *args], env={**os.environ, "DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=120, check=False)


def _tables(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                           ).fetchone()
    return int(row[0]) if row else 0


def test_a_backup_of_a_newer_schema_is_refused(database_url: str, second_database: str,
                                               tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    assert _dialtone(database_url, "backup", "--output", str(backup)).returncode == 0
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["migrations"].append({"id": "9999_from_a_later_release", "applied_at_utc": ""})
    (backup / "manifest.json").write_text(json.dumps(manifest))

    refused = _dialtone(second_database, "restore", str(backup))

    assert refused.returncode != 0
    assert "newer than this release" in refused.stderr
    assert "9999_from_a_later_release" in refused.stderr
    assert _tables(second_database) == 0


def test_a_directory_that_is_not_a_backup_is_refused(second_database: str,
                                                     tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")

    refused = _dialtone(second_database, "restore", str(tmp_path))

    assert refused.returncode != 0
    assert "unknown backup format" in refused.stderr
    assert _tables(second_database) == 0


def test_backup_will_not_write_into_a_non_empty_directory(database_url: str,
                                                         tmp_path: Path) -> None:
    (tmp_path / "old").write_text("keep me")

    refused = _dialtone(database_url, "backup", "--output", str(tmp_path))

    assert refused.returncode != 0
    assert "not empty" in refused.stderr
    assert (tmp_path / "old").read_text() == "keep me"


def test_a_truncated_archive_is_refused_before_the_database_is_touched(
        database_url: str, second_database: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    assert _dialtone(database_url, "backup", "--output", str(backup)).returncode == 0
    archive = backup / "store.dump"
    whole = archive.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "manifest.json").write_bytes((backup / "manifest.json").read_bytes())
    # The last bytes only: its table of contents is whole (`pg_restore --list` reads it
    # fine), a table's data is not.
    (cut / "store.dump").write_bytes(whole[:-10])

    refused = _dialtone(second_database, "restore", str(cut))

    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "damaged or incomplete" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _tables(second_database) == 0
    # So the good copy restores into the same database, still empty.
    retried = _dialtone(second_database, "restore", str(backup))
    assert retried.returncode == 0, retried.stderr[-2000:]


def test_a_restore_failing_half_way_says_to_recreate_the_database(
        database_url: str, second_database: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    assert _dialtone(database_url, "backup", "--output", str(backup)).returncode == 0
    # A whole archive whose rows go into a table no migration makes: pg_restore fails
    # once the schema is in place.
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE not_dialtone (n int); INSERT INTO not_dialtone VALUES (1)")
    (backup / "store.dump").unlink()
    pg_tools.dump(database_url, ["not_dialtone"], backup / "store.dump")

    failed = _dialtone(second_database, "restore", str(backup))

    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    assert "not_dialtone" in failed.stderr
    assert "drop the database and create it again" in failed.stderr
