"""CDR exports (issue 11 §4): rows/s and peak memory of `dialtone export cdr` (not a test).

Fills an embedded PostgreSQL with `--rows` final CDRs (one INSERT ... SELECT
over generate_series: realistic widths, agents, transfers), then exports them
as Parquet and CSV through the command's own function (dialtone.commands.export:
server-side cursor, 5,000-row batches, one row group each) to a file, each in
a fresh process so its peak RSS (ru_maxrss) is the export's alone. Run it with
two sizes to see the peak stay flat as the range grows.

    .venv/bin/python -m bench.export [--rows 500000] [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from api.exports import CDR_COLUMNS, Format
from api.queries import cdrs as cdr_queries
from bench.common import embedded_postgres, machine_facts
from dialtone.commands.export import export
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_FILL = """
INSERT INTO cdr (call_id, started_at, tenant, direction, caller, callee, final_callee, trunk,
                 sip_call_id, status, queue, agents, queued_at, ringing_at, answered_at, ended_at,
                 wait_s, talk_s, hold_s, hold_count, wrap_up_s, disposition, hangup_cause,
                 hangup_side, sip_status, transfers, recording_ref, mos, jitter_ms, loss_pct,
                 rtt_ms, last_version, last_position)
SELECT gen_random_uuid(), %(t0)s + n * interval '5 s', 'default', 'inbound',
       '+32255' || lpad((n %% 100000)::text, 5, '0'), '+3225550100', 'queue:q' || (n %% 50),
       '+3225550100', md5(n::text) || '@carrier.example.com', 'ended', 'q' || (n %% 50),
       ARRAY['a' || (n %% 500)], %(t0)s + n * interval '5 s' + interval '1 s',
       %(t0)s + n * interval '5 s' + interval '9 s', %(t0)s + n * interval '5 s' + interval '11 s',
       %(t0)s + n * interval '5 s' + interval '190 s', 10.0, 170.0 + n %% 60, n %% 7, n %% 2, 10.0,
       'answered', 'normal_clearing', 'caller', 200,
       CASE WHEN n %% 10 = 0
            THEN '[{"kind":"blind","target":"queue:q1","at":"2026-01-01T00:00:00Z"}]'
            ELSE '[]' END::jsonb,
       'recordings/' || n || '.wav', 4.3, 1.5, 0.1, 20.0, 9, n
FROM generate_series(1, %(rows)s) AS n
"""


def child(dsn: str, rows: int, fmt: str) -> None:
    """One export in this process; prints its figures as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wanted = cdr_queries.CdrFilter(tenant="default", start=T0,
                                   end=T0 + timedelta(seconds=5 * rows + 5))

    async def total(_db: object) -> int:
        return rows

    with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as out:
        started = time.perf_counter()
        written = asyncio.run(export(dsn, total, lambda db: cdr_queries.stream(db, wanted),
                                     CDR_COLUMNS, Format(fmt), out))
        elapsed = time.perf_counter() - started
        size = Path(out.name).stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": written, "seconds": elapsed, "bytes": size,
                      "rss_before_kib": before, "peak_rss_kib": peak}))


def run(dsn: str, rows: int, fmt: str) -> dict[str, float]:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-m", "bench.export", "--child", dsn, str(rows), fmt],
                         check=True, capture_output=True, text=True, env=env)
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append")
    sizes = sorted(parser.parse_args().rows or [500_000])
    with embedded_postgres() as server:
        dsn = server.dsn("bench")
        ensure_database(dsn)
        apply_migrations(dsn)
        filled = 0
        for rows in sizes:
            with psycopg.connect(dsn) as conn:
                conn.execute("TRUNCATE cdr")
                conn.execute(_FILL, {"t0": T0, "rows": rows})
            filled = rows
            for fmt in ("parquet", "csv"):
                f = run(dsn, filled, fmt)
                rate = f["rows"] / f["seconds"]
                print(f"{fmt:8} {f['rows']:>8,.0f} rows in {f['seconds']:6.1f} s = "
                      f"{rate:8,.0f} rows/s, file {f['bytes'] / 2**20:6.1f} MiB,"
                      f" peak RSS {f['peak_rss_kib'] / 1024:6.1f} MiB (after imports "
                      f"{f['rss_before_kib'] / 1024:.1f} MiB)")
    print(machine_facts())


if __name__ == "__main__":
    main()
