"""Backup and restore figures: `dialtone backup` of a store of N simulated calls, then
`dialtone restore` (with the rebuild of every projection) into a second database.

Run: ``.venv/bin/python -m bench.backup_restore --calls 10000`` (8 events per call).
Both commands run as subprocesses, as an operator runs them; each prints its own
timings (without process start-up and migrations), and the wall time is shown too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import embedded_postgres, machine_facts
from devtools.simulate import lifecycles
from dialtone import bootstrap
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations

DIALTONE = Path(sys.executable).parent / "dialtone"


def _run(database_url: str, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run([str(DIALTONE), *args], env={**os.environ,
                            "DATABASE_URL": database_url}, capture_output=True, text=True,
                            timeout=3600, check=False)
    if result.returncode != 0:
        raise SystemExit(f"dialtone {args[0]} failed:\n{result.stderr[-3000:]}")
    return time.monotonic() - started, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    calls = parser.parse_args().calls
    print(machine_facts())
    with embedded_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        source, target = server.dsn("source"), server.dsn("target")
        ensure_database(source)
        ensure_database(target)
        apply_migrations(source)
        lifecycles(bootstrap.call_service(source), calls, "bench", batch=100)
        backup = Path(tmp) / "backup"
        wall, out = _run(source, "backup", "--output", str(backup))
        print(f"{out.strip()}\n  (wall {wall:.1f}s)")
        wall, out = _run(target, "restore", str(backup))
        print(f"{out.strip()}\n  (wall {wall:.1f}s)")
    print(machine_facts())


if __name__ == "__main__":
    main()
