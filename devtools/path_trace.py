"""Which project files one plain call's code runs through, from its INVITE to its CDR row.

    .venv/bin/python -m devtools.path_trace          # about 20 s; prints the files

docs/architecture.md ("The life of one call") lists them; this re-measures the list.
It runs ``dialtone up --b2bua-workers 0`` (embedded PostgreSQL, in-process
projections) and one ``dialtone b2bua`` worker routing every number to a sipp UAS,
each under a profile hook (``sys.setprofile`` on every thread) that stays off until
SIGUSR2. Switched on just before one sipp call (answered, 1 s), each process logs
every project function called, once per thread, until the call's CDR row is read
back. A dataclass-generated method (a fact's ``__init__``) counts for the module that
defines the class.

Counted: the files whose code ran on the call's threads (the worker's pjsua2 and
storage threads, up's projection runner for the call log), except logging, metrics,
tracing and the heartbeats' periodic tick, which run everywhere, and the storage's
first connection (NOT_COUNTED).
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import psycopg

from dialtone.services.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
UAC = ROOT / "bench" / "sipp" / "uac_bench.xml"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
# The call's own threads, by process (the process's first argument).
CALL_THREADS = {"b2bua": ("MainThread", "dialtone-storage"), "up": ("projections-CallService",)}
# Logging, metrics and tracing run at every step; the heartbeats' tick runs on the
# loops' threads whatever they do; dialtone/database.py and event_store_ddl.py only when
# the storage thread makes its first connection (this run's call is the worker's first).
NOT_COUNTED = ("application/log_context.py", "application/metrics.py",
               "application/tracing.py", "dialtone/logs.py", "application/heartbeats.py",
               "dialtone/database.py", "dialtone/event_store_ddl.py")


# -- the hook, in each traced process ---------------------------------------------------------

def install(out: Path) -> None:
    """Log (time, thread, file, function) of each project function first called on a
    thread after SIGUSR2, to ``out``."""
    armed = threading.Event()
    seen: set[tuple[str, str, str]] = set()
    log = out.open("a", buffering=1)
    root = f"{ROOT}/"

    def hook(frame: FrameType, event: str, _: Any) -> None:
        if event != "call" or not armed.is_set():
            return
        name = frame.f_code.co_filename
        if name.startswith("<"):  # generated (dataclasses): the defining module's globals
            name = str(frame.f_globals.get("__file__") or name)
        if not name.startswith(root) or "/.venv/" in name:
            return
        key = (threading.current_thread().name, name[len(root):], frame.f_code.co_name)
        if key not in seen:
            seen.add(key)
            log.write(f"{time.time():.3f}\t" + "\t".join(key) + "\n")

    signal.signal(signal.SIGUSR2, lambda *_: armed.set())
    sys.setprofile(hook)
    threading.setprofile(hook)


def child(out: Path, module: str, argv: list[str]) -> None:
    """Run ``python -m module argv...`` in this process under the hook."""
    install(out)
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# -- reading the logs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    at: float
    thread: str
    path: str


def parse(lines: Iterable[str]) -> list[Hit]:
    hits = []
    for line in lines:
        at, thread, path, _ = line.rstrip("\n").split("\t")
        hits.append(Hit(float(at), thread, path))
    return hits


def on_path(hits: Iterable[Hit], threads: Iterable[str], until: float) -> list[str]:
    """The counted files, in the order the call reached them: run on one of ``threads``
    before ``until``, not in NOT_COUNTED."""
    wanted = set(threads)
    files: dict[str, None] = {}
    for hit in sorted(hits, key=lambda h: h.at):
        if hit.thread in wanted and hit.at <= until and hit.path not in NOT_COUNTED:
            files.setdefault(hit.path)
    return list(files)


# -- the run -------------------------------------------------------------------------------------

def _traced(work: Path, name: str, module: str, argv: list[str],
            env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.path_trace", "--child", str(work / f"{name}.trace"),
         module, *argv], env=env, stdout=(work / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT)


def _wait(ready: Callable[[], bool], seconds: float, what: str,
          *procs: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{what}: not in {seconds:.0f} s")
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def _cdr_written(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM cdr WHERE ended_at IS NOT NULL").fetchone() is not None


def trace_one_call(work: Path) -> tuple[dict[str, list[Hit]], float]:
    """Hits per process ("up", "b2bua") and when the CDR row was read back."""
    pg, http, sip, uas = free_port(), free_port(), free_port(), free_port()
    env = {**os.environ, "DIALTONE_DATA_DIR": str(work / "data"),
           "DIALTONE_EMBEDDED_PG_PORT": str(pg), "DIALTONE_HTTP_PORT": str(http)}
    dsn = f"postgresql://postgres@127.0.0.1:{pg}/dialtone"
    up = _traced(work, "up", "dialtone", ["up", "--b2bua-workers", "0"], env)
    procs = [up]
    try:
        _wait(lambda: _answers(f"http://127.0.0.1:{http}/readyz"), 180, "dialtone up", up)
        # Every port a free one (media too: sipp's default 6000 may be another run's).
        procs.append(subprocess.Popen([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas),
                                       "-mp", str(free_port()), "-nostdin"],
                                      cwd=work, stdout=subprocess.DEVNULL))
        worker = _traced(work, "b2bua", "dialtone.commands.b2bua", [
            "--port", str(sip), "--route", f"prefix:=sip:{{number}}@127.0.0.1:{uas}"],
            {**env, "DATABASE_URL": dsn, "DIALTONE_DATA_DIR": str(work / "worker"),
             "DIALTONE_EVENT_TABLES_READY": "1"})
        procs.append(worker)
        _wait(lambda: "listening on udp" in (work / "b2bua.log").read_text(errors="replace"),
              120, "the worker", worker)
        time.sleep(2)  # its start-up's last calls
        for proc in (up, worker):
            proc.send_signal(signal.SIGUSR2)
        subprocess.run([SIPP, "-sf", str(UAC), "-s", "1000", "-i", "127.0.0.1",
                        "-p", str(free_port()), "-mp", str(free_port()), "-m", "1",
                        "-d", "1000", "-nostdin",
                        "-timeout", "30s", f"127.0.0.1:{sip}"], cwd=work, check=True,
                       capture_output=True, timeout=60)
        _wait(lambda: _cdr_written(dsn), 60, "the CDR row", up)
        until = time.time()
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT if proc is up else signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    hits = {name: parse((work / f"{name}.trace").read_text().splitlines())
            for name in ("up", "b2bua")}
    return hits, until


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the logs and traces")
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), args.child[1], args.child[2:])
        return
    work = Path(tempfile.mkdtemp(prefix="dialtone-path-trace-"))
    hits, until = trace_one_call(work)
    total = 0
    for name in ("b2bua", "up"):
        files = on_path(hits[name], CALL_THREADS[name], until)
        total += len(files)
        print(f"{name} ({', '.join(CALL_THREADS[name])}): {len(files)} files")
        for path in files:
            print(f"  {path}")
    print(f"{total} project files from the INVITE to the CDR row (not counted: "
          f"{', '.join(NOT_COUNTED)})")
    if args.keep:
        print(f"logs and traces in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
