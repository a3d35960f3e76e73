"""What the SIP benchmarks (``bench.sip``, ``bench.callcentre``) stand on: their
processes, the UDP ports they listen on, the embedded database, the B2BUA workers
(separate processes or one forked pool) and the callers' audio.

Both benchmarks start dozens of workers on one machine, so the rules here are the
ones that made that reliable: signalling ports above the workers' RTP ranges and
never handed out twice, workers started a few at a time, and a worker that dies at
start failing the run at once instead of at a timeout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.media.tones import tone_samples
from bench.common import restart_with
from dialtone.commands.b2bua import spawn_worker
from dialtone.database import EVENT_TABLES_READY, ensure_database
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from dialtone.services.processes import stop_process

# Signalling ports come from [UDP_FLOOR, UDP_CEILING): above every worker's RTP range
# (40 ports a worker from a base of 12000 or 20000) and below the kernel's top.
UDP_FLOOR = 40000
UDP_CEILING = 60000
_TAKEN: set[int] = set()


class Stack(contextlib.ExitStack):
    """Every process a benchmark starts, stopped in reverse order, logging to ``work``."""

    def __init__(self, work: Path) -> None:
        super().__init__()
        self.work = work

    def process(self, args: list[str], log_name: str, env: dict[str, str] | None = None,
                ) -> subprocess.Popen[bytes]:
        log = (self.work / log_name).open("wb")
        return self.adopt(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                           cwd=self.work, env=env))

    def adopt(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.callback(stop_process, proc)
        return proc


@contextlib.contextmanager
def workdir(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh work directory for the run's logs, removed after it unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"work directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def free_udp() -> int:
    """A loopback UDP port free now, with its RTCP neighbour, never handed out twice."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if UDP_FLOOR <= port < UDP_CEILING and not {port, port + 1} & _TAKEN:
            _TAKEN.update({port, port + 1})
            return port
    raise RuntimeError("no free UDP port")


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free UDP ports (a pool's workers listen on
    consecutive ports)."""
    for _ in range(200):
        first = free_udp()
        ports = range(first + 2, first + count)  # free_udp checked first and first + 1
        if first + count >= UDP_CEILING or set(ports) & _TAKEN:
            continue
        try:
            for port in ports:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        _TAKEN.update(ports)
        return first
    raise RuntimeError(f"no {count} consecutive free UDP ports")


def start_database(stack: Stack, name: str, settings: dict[str, str],
                   ) -> tuple[str, EmbeddedPostgres]:
    """An embedded PostgreSQL restarted with ``settings`` (``max_connections``: each
    worker holds several connections), and a migrated database ``name`` on it."""
    server = EmbeddedPostgres(stack.work / "pg", free_port())
    server.start()
    stack.callback(server.destroy)
    restart_with(server, settings)
    dsn = server.dsn(name)
    ensure_database(dsn)
    apply_migrations(dsn)  # the workers' own tables (sip_worker_calls...), as `dialtone migrate`
    return dsn, server


def _worker_env(stack: Stack, dsn: str) -> dict[str, str]:
    """The workers' environment, telling them the event tables exist: whoever starts
    workers makes the tables first, since dozens of workers making them at once
    race in PostgreSQL's catalog ("tuple concurrently updated")."""
    return {**os.environ, "DATABASE_URL": dsn, "DIALTONE_DATA_DIR": str(stack.work / "data"),
            EVENT_TABLES_READY: "1", "DIALTONE_LOG_LEVEL": "INFO"}


@dataclass(frozen=True)
class Workers:
    """How to start the benchmark's ``dialtone b2bua`` workers."""

    count: int
    max_calls: int
    rtp_base: int  # worker i takes the 40 RTP ports from rtp_base + 40 i
    args: tuple[str, ...] = ()  # more `dialtone b2bua` options (routes, log levels)
    start_batch: int = 1  # ~1.5 s of CPU each to start: a few at a time on 2 cores

    def options(self, rtp_port: int) -> list[str]:
        return ["--max-calls", str(self.max_calls), "--rtp-port", str(rtp_port), *self.args]


Started = list[tuple[int, subprocess.Popen[bytes]]]


def start_workers(stack: Stack, workers: Workers, dsn: str) -> Started:
    """Separate worker processes, each on a port of its own: (port, process) each."""
    env = _worker_env(stack, dsn)
    started: Started = []
    for index in range(workers.count):
        port = free_udp()
        proc = spawn_worker(port, env=env, log_file=stack.work / f"b2bua-{port}.log",
                            extra_args=workers.options(workers.rtp_base + index * 40))
        started.append((port, stack.adopt(proc)))
        if len(started) % workers.start_batch == 0 or index == workers.count - 1:
            batch = started[-workers.start_batch:]
            wait_listening([(stack.work / f"b2bua-{p}.log", proc, 1) for p, proc in batch],
                           timeout=60 + 60 * workers.start_batch)
    return started


def start_pool(stack: Stack, workers: Workers, dsn: str,
               ) -> tuple[int, subprocess.Popen[bytes]]:
    """The workers as one ``dialtone b2bua --workers N``, forked from one parent on
    consecutive ports: (the first port, the parent; ``with_children`` gives its
    workers' pids)."""
    first = free_port_run(workers.count)
    log = stack.work / "b2bua-pool.log"
    parent = stack.adopt(spawn_worker(
        first, env=_worker_env(stack, dsn), log_file=log,
        extra_args=["--workers", str(workers.count), *workers.options(workers.rtp_base)]))
    wait_listening([(log, parent, workers.count)], timeout=60 + 5 * workers.count)
    return first, parent


def wait_listening(started: list[tuple[Path, subprocess.Popen[bytes], int]],
                   timeout: float) -> None:
    """Until each log says "listening on udp" as many times as it has workers; a
    process that exits first fails the run now, with its log's end."""
    deadline = time.monotonic() + timeout
    waiting = started
    while waiting:
        for log, proc, _ in waiting:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited at start ({log}):\n{_text(log)[-3000:]}")
        waiting = [(log, proc, n) for log, proc, n in waiting
                   if _text(log).count("listening on udp") < n]
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"workers not listening after {timeout:.0f} s: "
                               f"{[str(log) for log, _, _ in waiting]}")
        time.sleep(0.2)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def mulaw_wav(path: Path, seconds: float = 4.0) -> Path:
    """A G.711 mu-law WAV (what sipp's rtp_stream plays): a 440 Hz tone."""
    pcm = tone_samples(440.0, seconds, amplitude=0.2)
    encoded = bytes(_mulaw(sample) for sample in pcm)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(encoded), b"WAVE", b"fmt ",
                         16, 7, 1, 8000, 8000, 1, 8, b"data", len(encoded))
    path.write_bytes(header + encoded)
    return path


def _mulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, min(7, (magnitude >> 7).bit_length() - 1))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF
