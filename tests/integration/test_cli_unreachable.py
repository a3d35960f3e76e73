"""A `dialtone` command whose database or Kafka cannot be reached says so in one line
and exits 1: no traceback, and never the password of the DSN it was given."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dialtone.services.ports import free_port
from tests.fixtures.processes import DIALTONE

SECRET = "s3cret-Pa55word"  # the test's own, looked for in the output


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    """`dialtone ARGS` with `env` over this process's environment, less DATABASE_URL."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.Popen([str(DIALTONE), *args], env={**base, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _one_line_error(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith(starts), errors[0]
    return errors[0]


@pytest.mark.parametrize("args", [
    ("users", "list"),  # psycopg (the migrations first)
    ("export", "cdr", "--from", "2026-03-01", "--to", "2026-03-02"),  # asyncpg
    ("keys", "create", "crm"),
])
def test_a_database_that_refuses_connections(args: tuple[str, ...]) -> None:
    dsn = f"postgresql://dialtone:{SECRET}@127.0.0.1:{free_port()}/dialtone"
    result = _finished(_start(*args, DATABASE_URL=dsn))
    line = _one_line_error(result, "Error: database unreachable (")
    assert "refused" in line.lower()
    assert SECRET not in result.stdout + result.stderr


def test_an_embedded_server_that_cannot_start(tmp_path: Path) -> None:
    broken = tmp_path / "postgres"
    broken.mkdir()
    (broken / "PG_VERSION").write_text("18\n")  # a data directory without its files
    result = _finished(_start("users", "list", DIALTONE_DATA_DIR=str(tmp_path),
                            DIALTONE_EMBEDDED_PG_PORT=str(free_port())))
    line = _one_line_error(result, "Error: database unreachable (pg_ctl ")
    assert "pg_control" in line


def test_relay_republish_and_worker_with_kafka_unreachable(database_url: str,
                                                          tmp_path: Path) -> None:
    """Both wait for kafka-python's bootstrap timeout (30 s), side by side."""
    kafka = f"127.0.0.1:{free_port()}"
    env = {"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka,
           "DIALTONE_DATA_DIR": str(tmp_path)}
    relay = _start("relay", "--from-position", "1", "--application", "CallService", **env)
    worker = _start("worker", **env)
    trouble = (f"could not work with Kafka at {kafka} as anonymous (PLAINTEXT): "
               "KafkaTimeoutError: Unable to bootstrap")
    assert trouble in _one_line_error(_finished(relay), "Error: relay CallService stopped: ")
    assert trouble in _one_line_error(_finished(worker), "Error: worker stopped: ")
