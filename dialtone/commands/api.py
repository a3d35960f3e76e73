"""``dialtone api``: serve the HTTP API alone (projections fed elsewhere)."""

from __future__ import annotations

import click

from dialtone import bootstrap
from dialtone.database import resolve_dsn
from dialtone.services.serving import StopSignals, serve
from dialtone.settings import Settings


@click.command("api")
@click.option("--host", default=None, help="Listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="Port (default DIALTONE_HTTP_PORT).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the query API; run `dialtone worker` (or `up`) to keep projections current."""
    stop = StopSignals().install()  # SIGTERM ends it as cleanly as Ctrl-C
    # The embedded server, if used, is left running (as by relay, worker and router): the
    # all-in-one commands (up, demo) are the ones that stop it, when last to use it.
    serve(bootstrap.http_app(resolve_dsn(settings)), host or settings.http_host,
          port or settings.http_port, stop, log_level=settings.log_level.lower(),
          access_log=settings.access_log)
