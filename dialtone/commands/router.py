"""``dialtone router``: the routing process alone (offers queued calls to agents).

`dialtone up` runs it in-process; in a distributed deployment run exactly one
(a second one is safe, as reservations are optimistic, but only adds conflicts).
"""

from __future__ import annotations

import signal
import threading

import click

from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services.metrics import start_metrics_server
from dialtone.settings import Settings


@click.command("router")
@click.pass_obj
def command(settings: Settings) -> None:
    """Run the routing process until SIGTERM/Ctrl-C."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    start_metrics_server(settings)
    runner = composition.routing_runner(database_url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    runner.start()
    stopped.wait()
    runner.stop()
