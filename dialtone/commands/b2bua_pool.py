"""``dialtone b2bua --workers N``: one parent, N forked B2BUA workers on ports
PORT .. PORT+N-1 (docs/b2bua.md, *The pool*).

The parent has imported everything a worker needs (pjsua2's module, the
application, the adapters) before it forks, and freezes its objects out of the
garbage collector's reach, so the children share those pages instead of each
loading its own copy. It creates no pjsua2 endpoint, thread or database
connection: each child makes its own after the fork. The parent restarts a
child that dies (back-off doubling up to 30 s, at most 5 restarts a minute),
stops them all on SIGTERM/SIGINT, serves the pool's metrics (children up,
restarts) on its own port without a thread, and writes Kamailio's dispatcher
list for the pool, asking a running Kamailio to reload it when it changed.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from http.server import HTTPServer
from pathlib import Path
from types import FrameType

import click
from prometheus_client.exposition import MetricsHandler

from application import metrics
from dialtone.services.forkpool import ForkPool, PoolPolicy

log = logging.getLogger(__name__)

KAMCMD = "kamcmd"
RELOAD_TIMEOUT_S = 5.0


def dispatcher_lines(address: str, first_port: int, count: int, maxload: int) -> str:
    """Kamailio dispatcher set 1 for the pool: one line per worker, each allowed
    ``maxload`` calls (its bridged calls, --max-calls), its duid unique across boxes."""
    return "".join(f"1 sip:{address}:{port} 0 0 duid={address}:{port};maxload={maxload}\n"
                   for port in range(first_port, first_port + count))


def write_dispatcher_list(path: Path, content: str) -> bool:
    """Write ``content`` to ``path`` atomically unless it is there already; True if
    the file changed (Kamailio must reload it)."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(content)
    scratch.replace(path)  # Kamailio never reads half a list
    return True


def kamcmd(ctl: str, *command: str, tool: str = KAMCMD) -> bool:
    """``kamcmd -s CTL COMMAND...`` against a running Kamailio; False (logged) when it
    fails: the pool goes on, Kamailio reads the list at its next start and fails over
    from a dead worker on its own (408 after fr_timer)."""
    args = [shutil.which(tool) or tool, "-s", ctl, *command]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=RELOAD_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.error("kamcmd %s on %s: %s", " ".join(command), ctl, error)
        return False
    if done.returncode != 0:
        log.error("kamcmd %s on %s failed (%d): %s", " ".join(command), ctl, done.returncode,
                  (done.stderr or done.stdout).strip())
        return False
    log.info("Kamailio on %s: %s", ctl, " ".join(command))
    return True


@dataclass(frozen=True)
class PoolDispatcher:
    """Kamailio's view of the pool: the list file it reads, and optionally its control
    socket, through which a running Kamailio follows the pool."""

    list_file: Path
    address: str  # the workers' address in the list
    first_port: int
    maxload: int  # each worker's calls (--max-calls)
    ctl: str | None = None  # unix:PATH of Kamailio's ctl module

    def uri(self, index: int) -> str:
        return f"sip:{self.address}:{self.first_port + index}"

    def publish(self, count: int) -> None:
        """Write the list; a running Kamailio re-reads it when it changed."""
        lines = dispatcher_lines(self.address, self.first_port, count, self.maxload)
        if write_dispatcher_list(self.list_file, lines) and self.ctl:
            kamcmd(self.ctl, "dispatcher.reload")

    def mark(self, index: int, *, active: bool) -> None:
        """A dead worker inactive (Kamailio sends it nothing while it waits out its
        back-off), active again once restarted (an INVITE sent before it listens is
        retransmitted until it does)."""
        if self.ctl:
            kamcmd(self.ctl, "dispatcher.set_state", "a" if active else "i", "1",
                   self.uri(index))


class _Scrapes:
    """The pool's metrics on ``host:port``, answered from the parent's own loop:
    no thread in a process that forks (see dialtone/services/forkpool.py)."""

    def __init__(self, host: str, port: int) -> None:
        self.server = HTTPServer((host, port), MetricsHandler.factory(metrics.POOL_REGISTRY))
        log.info("pool metrics on http://%s:%d/metrics", host, port)

    def wait(self, seconds: float) -> None:
        self.server.timeout = seconds
        self.server.handle_request()  # one scrape, or nothing within ``seconds``

    def close(self) -> None:
        self.server.server_close()


def child_metrics_port(pool_port: int, index: int) -> int:
    """Child ``index`` serves its worker's metrics next to the pool's port (0: none)."""
    return pool_port + 1 + index if pool_port else 0


def run_pool(count: int, serve: Callable[[int], None], *, metrics_host: str,
             metrics_port: int, dispatcher: PoolDispatcher | None = None,
             policy: PoolPolicy | None = None) -> None:
    """Fork ``count`` workers, each running ``serve(index)``, and keep them running
    until SIGTERM/SIGINT; Kamailio's list for them in ``dispatcher``."""
    if dispatcher is not None:
        dispatcher.publish(count)
    try:
        scrapes = _Scrapes(metrics_host, metrics_port) if metrics_port else None
    except OSError as error:
        raise click.ClickException(
            f"cannot serve the pool's metrics on {metrics_host}:{metrics_port} "
            f"({error.strerror})") from None
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the pool", signum)
        stopping.append(signum)

    def run_child(index: int) -> int:
        serve(index)
        return 0

    def after_fork() -> None:
        if scrapes is not None:
            scrapes.server.socket.close()  # the parent's; the child serves its own port

    metrics.B2BUA_POOL_CHILDREN.set(count)
    counted = [0]  # restarts already added to the counter

    def observe(pool: ForkPool) -> None:
        metrics.B2BUA_POOL_CHILDREN_UP.set(pool.up)
        metrics.B2BUA_POOL_RESTARTS.inc(pool.restarts_total - counted[0])
        counted[0] = pool.restarts_total

    pool = ForkPool(count, run_child, policy=policy, observe=observe, after_fork=after_fork)
    if dispatcher is not None:
        pool.on_exit = lambda index, _status: dispatcher.mark(index, active=False)
        pool.on_restart = lambda index: dispatcher.mark(index, active=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # What each child would otherwise import at its first database connection.
    importlib.import_module("dialtone.event_store_ddl")  # and eventsourcing.postgres
    gc.collect()
    gc.freeze()  # the children share these pages: no collection of theirs touches them
    pool.start()
    log.info("b2bua pool: %d workers", count)
    try:
        pool.run(lambda: bool(stopping), scrapes.wait if scrapes is not None else None)
    finally:
        pool.stop()
        if scrapes is not None:
            scrapes.close()
        log.info("b2bua pool stopped (%d restarts)", pool.restarts_total)

