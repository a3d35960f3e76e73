"""``dialtone up``: the whole platform in one process on its embedded default.

With nothing configured: the embedded PostgreSQL, migrations, the in-process
projection runner, the call-centre routing process and the HTTP API. With
DATABASE_URL it uses that server; with DIALTONE_KAFKA_BOOTSTRAP it leaves
projections to `dialtone relay` + `dialtone worker`.
"""

from __future__ import annotations

import logging

import click
import uvicorn

from dialtone import bootstrap
from dialtone.database import embedded_server, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.inprocess import InProcessProjectionRunner
from streams.routing_process import RoutingRunner

log = logging.getLogger(__name__)


@click.command("up")
@click.option("--host", default=None, help="HTTP listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="HTTP port (default DIALTONE_HTTP_PORT).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None) -> None:
    """Run the platform until Ctrl-C."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    runners: list[InProcessProjectionRunner | RoutingRunner] = (
        [] if settings.kafka_bootstrap else list(bootstrap.inprocess_runners(database_url)))
    runners.append(bootstrap.routing_runner(database_url))  # offers queued calls to agents
    for runner in runners:
        runner.start()
    host, port = host or settings.http_host, port or settings.http_port
    click.echo(f"dialtone is up: http://{host}:{port}/docs (API), /healthz; Ctrl-C stops it")
    try:
        uvicorn.run(bootstrap.http_app(database_url), host=host, port=port,
                    log_level=settings.log_level.lower())
    finally:
        for runner in runners:
            runner.stop()
        if not settings.database_url:
            embedded_server(settings).stop()
            log.info("embedded PostgreSQL stopped")
