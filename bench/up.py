"""`dialtone up` as the benchmarks of the API start it: a real process on a fresh
database and data directory, waited for until /readyz answers, its log printed if
anything fails, stopped at the end (bench/api.py, bench/live.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx2

from bench.common import wait

DIALTONE = Path(sys.executable).parent / "dialtone"


def start_up(dsn: str, data_dir: Path, port: int, up_args: Sequence[str],
             log: Path) -> subprocess.Popen[bytes]:
    """`dialtone up` with no B2BUA worker on ``port``; the environment passes on."""
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_DATA_DIR": str(data_dir),
           "DIALTONE_HTTP_PORT": str(port)}
    with log.open("ab") as out:
        return subprocess.Popen([str(DIALTONE), "up", "--b2bua-workers", "0", *up_args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def ready(client: httpx2.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx2.HTTPError:
        return False


@contextlib.contextmanager
def running_up(dsn: str, data_dir: Path, port: int, up_args: Sequence[str], *,
               ready_within_s: float = 90) -> Iterator[subprocess.Popen[bytes]]:
    """`dialtone up` started and ready; the tail of its log on stderr if the block
    (or the start) fails; terminated after the block."""
    log = data_dir / "up.log"
    up = start_up(dsn, data_dir, port, up_args, log)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait(lambda: ready(client) or up.poll() is not None, ready_within_s,
                 "dialtone up")
        if up.poll() is not None:
            raise RuntimeError(f"dialtone up exited with {up.returncode}")
        yield up
    except BaseException:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        up.terminate()
        up.wait(30)
