"""SIP benchmark: a sipp ramp against 1 worker, N workers behind Kamailio, and sippy.

    .venv/bin/python -m bench.sip [--workers 20] [--pool] [--max-calls 2] [--hold-ms 1000]
                                  [--max-rate 60] [--media]

Scenarios: 1 worker direct (calls ending at once, then held --hold-ms), the
workers behind Kamailio (held, then ending at once), and sippy. Each scenario is
one sipp run starting at 5 calls/s and adding 5 calls/s every
step (--step seconds); it stops at the first step with a failed call (or at
--max-rate). Printed per scenario: the highest rate held for a whole step with
zero failed calls, INVITE->200 p50/p99 over that step, the most concurrent calls
seen, and the B2BUA processes' memory: peak RSS, and their summed PSS (from
/proc/<pid>/smaps_rollup: shared pages divided between the processes sharing them)
when they carried the most calls, per worker and per concurrent call then. ``--pool`` starts
the workers as one ``dialtone b2bua --workers N`` (forked from one parent, sharing
its pages; the parent counts in the PSS) instead of N separate processes. The
peer is sippy's b2bua_simple (signalling only, no media) under the same ramp with
the same callee. ``--media``: each caller streams G.711 audio for the whole call
and the callee echoes it (sipp ``rtp_stream`` / ``-rtp_echo``), so the workers
bridge real RTP; without it the calls carry no packets.

Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.memory import Memory, PeakMemory, group_memory, with_children
from bench.sip_stack import (
    Stack,
    Workers,
    free_udp,
    mulaw_wav,
    start_database,
    start_pool,
    start_workers,
    workdir,
)
from devtools.kamailio import start_kamailio
from dialtone.commands.b2bua import call_service_factory, callcentre_service_factory
from dialtone.services.processes import stop_process

ROOT = Path(__file__).resolve().parent.parent
UAC = ROOT / "bench" / "sipp" / "uac_bench.xml"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SIPPY = Path(sys.executable).with_name("b2bua_simple")
RTP_BASE = 20000  # workers' RTP ranges: 20000 + 40 per worker
MAX_CONNECTIONS = 1000


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
    workers: int = 1
    pss: Memory = field(default_factory=Memory)  # when it carried the most calls
    calls_at_pss: float = 0.0  # those calls

    def best(self) -> Step | None:
        whole = [s for s in self.steps if s.end - s.start >= 0.9 * self.step_seconds]
        clean = [s for s in whole if s.failed == 0 and s.ok > 0]
        return max(clean, key=lambda s: s.rate, default=None)

    def summary(self) -> str:
        best = self.best()
        peak = max((s.concurrent for s in self.steps), default=0)
        if best is None:
            return (f"{self.label:<34} no clean step; peak concurrent {peak}"
                    f"\n{'':<34} {self.pss.describe(self.workers, self.calls_at_pss)}")
        times = sorted(ms for t, ms in self.rtts if best.start <= t <= best.end) or [0.0]
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        return (f"{self.label:<34} {best.rate:5.0f} calls/s  INVITE->200 p50 {p50:6.1f} ms"
                f"  p99 {p99:6.1f} ms  peak concurrent {peak:4d}  RSS {self.rss_mb:6.1f} MB"
                f"\n{'':<34} {self.pss.describe(self.workers, self.calls_at_pss)}")


def _stop_sipp(proc: subprocess.Popen[bytes], calls_end_within: float) -> None:
    """Stop a sipp client smoothly: SIGUSR1 places no new call and lets the calls in
    progress end with their BYE. A sipp killed with calls up leaves them up in the
    workers (nothing hangs them up) and in Kamailio's call-load counts, so the next
    ramp would start with those workers full."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(calls_end_within)
    stop_process(proc)


def database(stack: Stack) -> str:
    """``DATABASE_URL`` when set, else an embedded server allowing 50 workers' few
    connections each (storage, call-centre link, lost calls)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    return start_database(stack, "bench", {"max_connections": str(MAX_CONNECTIONS)})[0]


Pids = Callable[[], list[int]]


def start(stack: Stack, args: argparse.Namespace, uas_port: int, dsn: str,
          ) -> tuple[list[int], Pids]:
    """``--workers`` workers routing every number to the UAS, separate or as one
    ``--pool``: (their ports, their pids now; a pool's parent first)."""
    create_schema(dsn)
    workers = Workers(args.workers, args.max_calls, RTP_BASE,
                      args=("--route", f"prefix:=sip:{{number}}@127.0.0.1:{uas_port}"))
    if args.pool:
        first, parent = start_pool(stack, workers, dsn)
        return list(range(first, first + args.workers)), lambda: with_children(parent.pid)
    started = start_workers(stack, workers, dsn)
    pids = [proc.pid for _, proc in started]
    return [port for port, _ in started], lambda: pids


def create_schema(dsn: str) -> None:
    """Create the event store tables once: dozens of workers creating them at
    the same moment race in PostgreSQL's catalog ("tuple concurrently updated")."""
    for factory in (call_service_factory, callcentre_service_factory):
        factory(dsn).close()


def start_proxy(stack: Stack, worker_ports: list[int], maxload: int) -> int:
    proxy = start_kamailio(stack.work / "kamailio", worker_ports, port=free_udp(),
                           maxload=maxload)
    stack.adopt(proxy.process)
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
         pids: Pids, hold_ms: int, workers: int = 1) -> Result:
    """One sipp ramp against 127.0.0.1:target_port, stopped at the first failing step."""
    run = stack.work / label.replace(" ", "_")
    run.mkdir()
    stat_file = run / "stat.csv"
    limit_s = args.step * (args.max_rate // 5 + 3)
    cmd = [SIPP, "-sf", str(args.scenario), "-s", "1000", "-i", "127.0.0.1", "-p", str(free_udp()),
           "-mp", str(free_udp()), "-r", "5", "-rate_increase", "5", "-fd", str(args.step),
           "-rate_max", str(args.max_rate), "-d", str(hold_ms), "-l", "1000",
           "-trace_stat", "-stf", str(stat_file), "-trace_rtt", "-rtt_freq", "1",
           "-trace_err", "-error_file", str(run / "errors.log"),
           "-nostdin", "-timeout", f"{limit_s}s",
           f"127.0.0.1:{target_port}"]
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    result = Result(label, args.step, workers=workers)
    memory = PeakMemory()
    # sipp's -timeout stops new calls but it may still wait for one that never
    # ends (seen with --media): the run is cut a little after it.
    deadline = time.monotonic() + limit_s + 30
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
            result.steps = read_steps(stat_file)
            memory.sample(pids(), result.steps[-1].concurrent if result.steps else 0)
            if any(s.failed for s in result.steps):
                break
    finally:  # Ctrl-C included: no sipp left behind
        _stop_sipp(proc, calls_end_within=hold_ms / 1000 + 15)
    result.steps = read_steps(stat_file)
    result.rtts = read_rtts(run)
    result.rss_mb = peak_rss_mb(pids())
    result.pss, result.calls_at_pss = memory.peak, memory.calls_at_peak
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


def first_worker(pids: Pids, pool: bool) -> Pids:
    """The first worker's pid (in a pool: the parent's first child)."""
    if not pool:
        return lambda: pids()[:1]
    return lambda: pids()[1:2]


def media_scenario(work: Path) -> Path:
    """uac_bench.xml streaming a mu-law WAV as RTP from the ACK to the BYE."""
    audio = mulaw_wav(work / "caller.wav")
    stream = (f'  <nop>\n    <action>\n      <exec rtp_stream="{audio},-1,0"/>\n'
              "    </action>\n  </nop>\n  <pause/>")
    path = work / "uac_media.xml"
    path.write_text(UAC.read_text().replace("  <pause/>", stream, 1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--pool", action="store_true",
                        help="the workers as one `dialtone b2bua --workers N` (forked)")
    parser.add_argument("--max-calls", type=int, default=2, choices=(1, 2),
                        help="bridged calls per worker, and Kamailio's maxload")
    parser.add_argument("--hold-ms", type=int, default=1000, help="answered call length")
    parser.add_argument("--max-rate", type=int, default=60)
    parser.add_argument("--step", type=int, default=10, help="seconds per rate step")
    parser.add_argument("--skip-sippy", action="store_true")
    parser.add_argument("--sippy-hold-ms", type=int, default=None,
                        help="sippy's calls' length (default --hold-ms; 0: its calls/s)")
    parser.add_argument("--keep", action="store_true", help="keep logs and stat files")
    parser.add_argument("--media", action="store_true",
                        help="callers stream G.711 RTP, the callee echoes it")
    args = parser.parse_args()
    results = []
    with workdir("dialtone-bench-sip-", args.keep) as work, Stack(work) as stack:
        dsn = database(stack)
        uas_port = free_udp()
        args.scenario = media_scenario(work) if args.media else UAC
        echo = ["-rtp_echo"] if args.media else []
        stack.process([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                       "-mp", str(free_udp()), "-nostdin", *echo], "uas.log")
        ports, pids = start(stack, args, uas_port, dsn)
        idle = group_memory(pids())
        print(f"{args.workers} workers up{' (pool)' if args.pool else ''}, --max-calls "
              f"{args.max_calls}; ramp +5 calls/s every {args.step}s, hold {args.hold_ms} ms; "
              f"idle: {idle.describe(args.workers, 0)}", flush=True)
        # One worker holds max-calls calls (pjsua2's 4-leg cap): its rate is measured
        # with calls that hang up at once, then with the benchmark's hold time.
        first = first_worker(pids, args.pool)
        results.append(ramp(stack, "1 worker, direct, no hold", ports[0], args, first, 0))
        print(results[-1].summary(), flush=True)
        results.append(ramp(stack, "1 worker, direct", ports[0], args, first, args.hold_ms))
        print(results[-1].summary(), flush=True)
        kamailio = start_proxy(stack, ports, args.max_calls)
        results.append(ramp(stack, f"{args.workers} workers via Kamailio", kamailio, args,
                            pids, args.hold_ms, workers=args.workers))
        print(results[-1].summary(), flush=True)
        # The rate the edge and the pool take when calls end at once (calls/s is
        # then bounded by set-up and tear-down, not by the legs held).
        results.append(ramp(stack, f"{args.workers} workers via Kamailio, no hold", kamailio,
                            args, pids, 0, workers=args.workers))
        print(results[-1].summary(), flush=True)
        if not args.skip_sippy:
            sippy_port = free_udp()
            sippy = stack.process([str(SIPPY), "-f", "-l", "127.0.0.1", "-p", str(sippy_port),
                                   "-n", f"127.0.0.1:{uas_port}", "-L", str(work / "sippy.log")],
                                  "sippy.out")
            time.sleep(2)
            hold = args.hold_ms if args.sippy_hold_ms is None else args.sippy_hold_ms
            results.append(ramp(stack, f"sippy b2bua_simple, hold {hold} ms", sippy_port, args,
                                lambda: [sippy.pid], hold))
            print(results[-1].summary(), flush=True)
    print("\nsummary")
    for result in results:
        print(result.summary())


if __name__ == "__main__":
    main()
