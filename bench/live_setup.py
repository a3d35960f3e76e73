"""What bench.live runs against and reads back: the tenant loaded straight into the
tables, the Kafka deployment (``--kafka``), and what the run leaves in the
database and in `up`'s log."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.live_snapshot import history
from bench.up import DIALTONE
from devtools.kafka import KafkaBroker
from dialtone.services.ports import free_port
from projections import callcentre, interval_buckets

HISTORY_SOURCE = "store:bench-history"


def load_tenant(dsn: str, calls: int) -> None:
    """bench/live_snapshot.py's tenant, its last call a minute ago (its day is today's
    as far as it fits since midnight), projected straight into the tables."""
    now = datetime.now(UTC)
    t0 = max(now - timedelta(seconds=5 * calls + 60),
             now.replace(hour=0, minute=0, second=1, microsecond=0))
    events = history(calls, t0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for first in range(0, len(events), 500):
            callcentre.apply_batch(conn, events[first:first + 500], HISTORY_SOURCE)
        interval_buckets.refresh_dirty(conn)  # the refresher's work, done before `up` starts
        conn.execute("ANALYZE")  # what autovacuum does on a running system


def position_rows(dsn: str) -> str:
    """How many (projection, source) rows the live feed reads on each pass."""
    with psycopg.connect(dsn) as conn:
        rows, sources = conn.execute("SELECT count(*), count(DISTINCT source)"
                                     " FROM projection_positions").fetchone() or (0, 0)
    return f"{rows} rows, {sources} sources"


def reads_told(log: Path) -> list[str]:
    """The hub's count of views read whole and in part (api/live/stream.py logs it)."""
    if not log.exists():
        return []
    return [line[line.index("live feed: "):].split('"')[0]
            for line in log.read_text().splitlines() if "live feed: views read" in line]


@contextlib.contextmanager
def kafka_pipeline(dsn: str, data_dir: Path) -> Iterator[dict[str, int]]:
    """An embedded broker (as tests/fixtures/kafka.py starts it), `up` told to use it (so
    it runs no projection runner of its own), and `dialtone relay` and `dialtone worker`
    on it; their output in the data directory. Yields their pids and the broker's."""
    broker = KafkaBroker(data_dir / "kafka", free_port(), free_port())
    broker.start()
    os.environ["DIALTONE_KAFKA_BOOTSTRAP"] = broker.bootstrap  # start_up passes os.environ on
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_DATA_DIR": str(data_dir)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("relay", "worker"):
            with (data_dir / f"{name}.log").open("ab") as out:
                processes[name] = subprocess.Popen([str(DIALTONE), name], env=env,
                                                   stdout=out, stderr=subprocess.STDOUT)
        yield {name: process.pid for name, process in processes.items()} | {
            "broker": broker.pid() or 0}  # the JVM
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(30)
        kept = Path(tempfile.gettempdir()) / "dialtone-bench-live"
        kept.mkdir(exist_ok=True)
        for name in processes:  # the data directory goes with the run; their logs stay
            shutil.copyfile(data_dir / f"{name}.log", kept / f"{name}.log")
        print(f"relay and worker logs: {kept}")
        os.environ.pop("DIALTONE_KAFKA_BOOTSTRAP", None)
        broker.stop()
