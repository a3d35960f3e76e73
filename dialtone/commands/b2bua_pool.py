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


def reload_dispatcher(ctl: str, kamcmd: str = KAMCMD) -> bool:
    """``kamcmd -s CTL dispatcher.reload``: Kamailio re-reads its list file. False
    (logged) when it cannot: Kamailio then reads the list at its next start."""
    tool = shutil.which(kamcmd) or kamcmd
    try:
        done = subprocess.run([tool, "-s", ctl, "dispatcher.reload"], capture_output=True,
                              text=True, timeout=RELOAD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.error("cannot ask Kamailio on %s to reload its dispatcher list: %s", ctl, error)
        return False
    if done.returncode != 0:
        log.error("kamcmd dispatcher.reload on %s failed (%d): %s", ctl, done.returncode,
                  (done.stderr or done.stdout).strip())
        return False
    log.info("Kamailio on %s reloaded its dispatcher list", ctl)
    return True


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
             metrics_port: int, dispatcher: tuple[Path, str] | None = None,
             kamailio_ctl: str | None = None, policy: PoolPolicy | None = None) -> None:
    """Fork ``count`` workers, each running ``serve(index)``, and keep them running
    until SIGTERM/SIGINT. ``dispatcher``: the list file and its content."""
    if dispatcher is not None and write_dispatcher_list(*dispatcher) and kamailio_ctl:
        reload_dispatcher(kamailio_ctl)
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
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # What each child would otherwise import at its first database connection.
    importlib.import_module("eventsourcing.postgres")
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

