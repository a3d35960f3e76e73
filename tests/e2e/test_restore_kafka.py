"""`dialtone restore` warns when the topics are ahead of the restored store."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from devtools.simulate import lifecycles
from dialtone import bootstrap
from dialtone.database import drop_database, ensure_database
from dialtone.migrations import apply_migrations
from tests.fixtures.processes import DIALTONE

pytestmark = pytest.mark.kafka


def _dialtone(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(DIALTONE), *args], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_restore_behind_the_topics_says_to_use_a_new_prefix(
    database_url: str, second_database: str, kafka_bootstrap: str, tmp_path: Path,
) -> None:
    apply_migrations(database_url)
    calls = bootstrap.call_service(database_url)
    lifecycles(calls, 20, "before")  # positions 1..160, in the backup
    _dialtone({"DATABASE_URL": database_url}, "backup", "--output", str(tmp_path / "b"))
    lifecycles(calls, 5, "after")  # 161..200: published, then "lost" with the database
    old, new = f"t{uuid.uuid4().hex[:8]}.", f"t{uuid.uuid4().hex[:8]}."
    _dialtone({"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
               "DIALTONE_TOPIC_PREFIX": old}, "relay", "--from-position", "1")

    behind = _dialtone({"DATABASE_URL": second_database, "DIALTONE_KAFKA_BOOTSTRAP":
                        kafka_bootstrap, "DIALTONE_TOPIC_PREFIX": old},
                       "restore", str(tmp_path / "b"))

    assert "CallService positions up to 200, past the restored head 160" in behind.stderr
    assert "new DIALTONE_TOPIC_PREFIX" in behind.stderr
    # The same backup into a new database, relayed to a new prefix: nothing ahead.
    drop_database(second_database)
    ensure_database(second_database)
    fresh = _dialtone({"DATABASE_URL": second_database, "DIALTONE_KAFKA_BOOTSTRAP":
                       kafka_bootstrap, "DIALTONE_TOPIC_PREFIX": new},
                      "restore", str(tmp_path / "b"))
    assert "WARNING" not in fresh.stderr
    assert "CallService topics end at position 0 <= head 160" in fresh.stdout
