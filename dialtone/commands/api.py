"""``dialtone api``: serve the HTTP API alone (projections fed elsewhere)."""

from __future__ import annotations

import click
import uvicorn

from dialtone import bootstrap
from dialtone.database import resolve_dsn
from dialtone.settings import Settings


@click.command("api")
@click.option("--host", default=None, help="Listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="Port (default DIALTONE_HTTP_PORT).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the query API; run `dialtone worker` (or `up`) to keep projections current."""
    uvicorn.run(bootstrap.http_app(resolve_dsn(settings)), host=host or settings.http_host,
                port=port or settings.http_port, log_level=settings.log_level.lower())
