"""The API benchmarks' load generator, run in a process of its own (bench/api.py,
bench/live.py): asyncio on uvloop with aiohttp's client, open-loop. Request n is due
at start + n / rate whatever the answers before it did, and its latency counts from
that due time, not from when it was sent (a stalled server is charged for every
request it held up: no coordinated omission). It reports its own CPU use and how
late it sent, so it can be seen not to be the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import uvloop


@dataclass(frozen=True)
class Shot:
    """One request of the round robin: a label for the table, a path, headers."""

    label: str
    path: str
    headers: dict[str, str]


async def _one(session: Any, shot: Shot, due: float, out: dict[str, list[Any]]) -> None:
    sent = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds
    try:
        async with session.get(shot.path, headers=shot.headers) as response:
            await response.read()
            status = response.status
    except Exception:  # a failed request is counted, not fatal
        status = -1
    out.setdefault(shot.label, []).append((time.perf_counter() - due, sent - due, status))


async def _phase(session: Any, shots: Sequence[Shot], rate: float, seconds: float,
                 out: dict[str, list[Any]]) -> float:
    """Send at `rate` for `seconds`, each request at its due time; wait for all."""
    tasks = set()
    start, total = time.perf_counter() + 0.05, int(rate * seconds)
    for n in range(total):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))  # sleep(0) when late: yield
        task = asyncio.create_task(_one(session, shots[n % len(shots)], due, out))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*list(tasks))
    return time.perf_counter() - start


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    shots = [Shot(**s) for s in spec["shots"]]
    connector = aiohttp.TCPConnector(limit=spec["connections"])
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(spec["base_url"], connector=connector,
                                     timeout=timeout) as session:
        await _phase(session, shots, spec["rate"], spec["warmup"], {})
        out: dict[str, list[Any]] = {}
        cpu0 = _cpu_s()
        wall = await _phase(session, shots, spec["rate"], spec["seconds"], out)
        cpu = _cpu_s() - cpu0
    return {"samples": out, "wall_s": wall, "generator_cpu_s": cpu}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drive_main() -> None:
    """`python -m bench.load_generator`: spec as JSON on stdin, samples as JSON on stdout."""
    spec = json.load(sys.stdin)
    json.dump(uvloop.run(_drive(spec)), sys.stdout)


def run_driver(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the generator in its own process on ``spec``; its samples."""
    done = subprocess.run([sys.executable, "-m", "bench.load_generator"],
                          input=json.dumps(spec).encode(), capture_output=True, check=True)
    return dict(json.loads(done.stdout))


if __name__ == "__main__":
    drive_main()
