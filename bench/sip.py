"""SIP benchmark: a sipp ramp against 1 worker, N workers behind Kamailio, and sippy.

    .venv/bin/python -m bench.sip [--workers 20] [--hold-ms 1000] [--max-rate 60]

Each scenario is one sipp run starting at 5 calls/s and adding 5 calls/s every
step (--step seconds); it stops at the first step with a failed call (or at
--max-rate). Printed per scenario: the highest rate held for a whole step with
zero failed calls, INVITE->200 p50/p99 over that step, the most concurrent calls
seen, and peak RSS of the B2BUA processes. The peer is sippy's b2bua_simple
(signalling only, no media) under the same ramp with the same callee.

Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devtools.kamailio import Kamailio, start_kamailio
from dialtone.commands.b2bua import (
    call_service_factory,
    callcentre_service_factory,
    spawn_worker,
)
from dialtone.database import ensure_database
from dialtone.services.postgres import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parent.parent
UAC = ROOT / "bench" / "sipp" / "uac_bench.xml"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SIPPY = Path(sys.executable).with_name("b2bua_simple")
RTP_BASE = 20000  # workers' RTP ranges: 20000 + 40 per worker
RTP_TOP = 40000  # signalling ports are taken above this
START_BATCH = 1  # concurrent start-ups race creating the store tables (see create_schema)


@dataclass
class Step:
    rate: float
    ok: int
    failed: int
    concurrent: int
    start: float
    end: float


@dataclass
class Result:
    label: str
    step_seconds: float
    steps: list[Step] = field(default_factory=list)
    rtts: list[tuple[float, float]] = field(default_factory=list)  # (s since start, ms)
    rss_mb: float = 0.0

    def best(self) -> Step | None:
        whole = [s for s in self.steps if s.end - s.start >= 0.9 * self.step_seconds]
        clean = [s for s in whole if s.failed == 0 and s.ok > 0]
        return max(clean, key=lambda s: s.rate, default=None)

    def summary(self) -> str:
        best = self.best()
        peak = max((s.concurrent for s in self.steps), default=0)
        if best is None:
            return f"{self.label:<34} no clean step; peak concurrent {peak}"
        times = sorted(ms for t, ms in self.rtts if best.start <= t <= best.end) or [0.0]
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        return (f"{self.label:<34} {best.rate:5.0f} calls/s  INVITE->200 p50 {p50:6.1f} ms"
                f"  p99 {p99:6.1f} ms  peak concurrent {peak:4d}  RSS {self.rss_mb:6.1f} MB")


_TAKEN: set[int] = set()


def free_udp() -> int:
    """A loopback port free for UDP, never handed out twice in this run."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        # Below the RTP ranges' top and with its RTCP neighbour free too.
        if port not in _TAKEN and port + 1 not in _TAKEN and port >= RTP_TOP:
            _TAKEN.update({port, port + 1})
            return port
    raise RuntimeError("no free UDP port")


def wait_all_listening(work: Path, ports: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(ports)
    while waiting and time.monotonic() < deadline:
        waiting = {p for p in waiting
                   if "listening on udp" not in _text(work / f"b2bua-{p}.log")}
        time.sleep(0.5)
    if waiting:
        raise RuntimeError(f"workers not listening after {timeout}s: {sorted(waiting)}")


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class Stack(contextlib.ExitStack):
    """Every process the benchmark starts, stopped in reverse order."""

    def __init__(self, work: Path) -> None:
        super().__init__()
        self.work = work

    def process(self, args: list[str], log_name: str,
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.work / log_name).open("wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.work,
                                env=env)
        self.callback(_stop, proc)
        return proc

    def adopt(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.callback(_stop, proc)
        return proc

    def adopt_kamailio(self, proxy: Kamailio) -> Kamailio:
        self.adopt(proxy.process)
        return proxy


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_database(stack: Stack) -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    server = EmbeddedPostgres(stack.work / "pg", free_port())
    server.start()
    stack.callback(server.destroy)
    dsn = server.dsn("bench")
    ensure_database(dsn)
    return dsn


def start_workers(stack: Stack, count: int, uas_port: int,
                  dsn: str) -> tuple[list[int], list[int]]:
    """``count`` workers routing every number to the UAS: (ports, pids)."""
    env = {**os.environ, "DATABASE_URL": dsn, "DIALTONE_DATA_DIR": str(stack.work / "data"),
           "DIALTONE_LOG_LEVEL": "INFO"}
    create_schema(dsn)
    procs = []
    for index in range(count):
        port = free_udp()
        log = stack.work / f"b2bua-{port}.log"
        rtp = ["--rtp-port", str(RTP_BASE + index * 40)]  # the worker's default range: 40
        proc = spawn_worker(port, routes=[f"prefix:=sip:{{number}}@127.0.0.1:{uas_port}"],
                            env=env, log_file=log, extra_args=rtp)
        procs.append((port, stack.adopt(proc)))
        if len(procs) % START_BATCH == 0 or index == count - 1:
            # ~1.5 s of CPU each to start: a few at a time on 2 cores.
            batch = [port for port, _ in procs[-START_BATCH:]]
            wait_all_listening(stack.work, batch, timeout=120)
    return [port for port, _ in procs], [proc.pid for _, proc in procs]


def create_schema(dsn: str) -> None:
    """Create the event store tables once: dozens of workers creating them at
    the same moment race in PostgreSQL's catalog ("tuple concurrently updated")."""
    for factory in (call_service_factory, callcentre_service_factory):
        factory(dsn).close()


def start_proxy(stack: Stack, worker_ports: list[int]) -> int:
    proxy = stack.adopt_kamailio(start_kamailio(stack.work / "kamailio", worker_ports,
                                                port=free_udp()))
    return proxy.port


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


def ramp(stack: Stack, label: str, target_port: int, args: argparse.Namespace,
         pids: list[int], hold_ms: int) -> Result:
    """One sipp ramp against 127.0.0.1:target_port, stopped at the first failing step."""
    run = stack.work / label.replace(" ", "_")
    run.mkdir()
    stat_file = run / "stat.csv"
    cmd = [SIPP, "-sf", str(UAC), "-s", "1000", "-i", "127.0.0.1", "-p", str(free_udp()),
           "-mp", str(free_udp()), "-r", "5", "-rate_increase", "5", "-fd", str(args.step),
           "-rate_max", str(args.max_rate), "-d", str(hold_ms), "-l", "1000",
           "-trace_stat", "-stf", str(stat_file), "-trace_rtt", "-rtt_freq", "1",
           "-trace_err", "-error_file", str(run / "errors.log"),
           "-nostdin", "-timeout", f"{args.step * (args.max_rate // 5 + 3)}s",
           f"127.0.0.1:{target_port}"]
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    result = Result(label, args.step)
    while proc.poll() is None:
        time.sleep(1)
        result.steps = read_steps(stat_file)
        if any(s.failed for s in result.steps):
            proc.terminate()
            break
    _stop(proc)
    result.steps = read_steps(stat_file)
    result.rtts = read_rtts(run)
    result.rss_mb = peak_rss_mb(pids)
    return result


def read_steps(stat_file: Path) -> list[Step]:
    """One Step per sipp statistics period; times in seconds since sipp started."""
    if not stat_file.exists():
        return []
    with stat_file.open() as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    steps, clock = [], 0.0
    for row in rows[1:]:  # the first row is sipp's start-up snapshot
        with contextlib.suppress(KeyError, ValueError):
            elapsed = _seconds(row["ElapsedTime(P)"])
            steps.append(Step(rate=float(row["TargetRate"]), ok=int(row["SuccessfulCall(P)"]),
                              failed=int(row["FailedCall(P)"]),
                              concurrent=int(row["CurrentCall"]), start=clock,
                              end=clock + elapsed))
            clock += elapsed
    return steps


def read_rtts(run: Path) -> list[tuple[float, float]]:
    rtts = []
    for path in run.glob("*_rtt.csv"):
        with path.open() as f:
            for row in csv.reader(f, delimiter=";"):
                with contextlib.suppress(ValueError, IndexError):
                    rtts.append((float(row[0]) / 1000.0, float(row[1])))
    return rtts


def _seconds(hms: str) -> float:
    h, m, s = hms.split(":")[:3]
    return int(h) * 3600 + int(m) * 60 + float(s)


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dialtone-bench-sip-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--hold-ms", type=int, default=1000, help="answered call length")
    parser.add_argument("--max-rate", type=int, default=60)
    parser.add_argument("--step", type=int, default=10, help="seconds per rate step")
    parser.add_argument("--skip-sippy", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep logs and stat files")
    args = parser.parse_args()
    results = []
    with workdir(args.keep) as work, Stack(work) as stack:
        dsn = start_database(stack)
        uas_port = free_udp()
        stack.process([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                       "-mp", str(free_udp()), "-nostdin"], "uas.log")
        ports, pids = start_workers(stack, args.workers, uas_port, dsn)
        print(f"{args.workers} workers up; ramp +5 calls/s every {args.step}s, "
              f"hold {args.hold_ms} ms", flush=True)
        # One worker holds one call (pjsua2's 4-leg cap): its rate is measured
        # with calls that hang up at once, then with the benchmark's hold time.
        results.append(ramp(stack, "1 worker, direct, no hold", ports[0], args, pids[:1], 0))
        print(results[-1].summary(), flush=True)
        results.append(ramp(stack, "1 worker, direct", ports[0], args, pids[:1], args.hold_ms))
        print(results[-1].summary(), flush=True)
        kamailio = start_proxy(stack, ports)
        results.append(ramp(stack, f"{args.workers} workers via Kamailio", kamailio, args,
                            pids, args.hold_ms))
        print(results[-1].summary(), flush=True)
        if not args.skip_sippy:
            sippy_port = free_udp()
            sippy = stack.process([str(SIPPY), "-f", "-l", "127.0.0.1", "-p", str(sippy_port),
                                   "-n", f"127.0.0.1:{uas_port}", "-L", str(work / "sippy.log")],
                                  "sippy.out")
            time.sleep(2)
            results.append(ramp(stack, "sippy b2bua_simple (no media)", sippy_port, args,
                                [sippy.pid], args.hold_ms))
            print(results[-1].summary(), flush=True)
    print("\nsummary")
    for result in results:
        print(result.summary())


if __name__ == "__main__":
    main()
