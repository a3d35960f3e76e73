"""``dialtone api``: serve the HTTP API alone (projections fed elsewhere)."""

from __future__ import annotations

import os

import click
from fastapi import FastAPI

from application.tracing import setup_tracing
from dialtone import bootstrap, logs
from dialtone.database import resolve_dsn
from dialtone.services.serving import StopSignals, freeze_startup_objects, serve, serve_workers
from dialtone.settings import Settings

# `serve_workers` spawns processes that import this and call it (uvicorn's factory).
WORKER_APP = f"{__name__}:worker_app"
WORKERS_DSN = "DIALTONE_API_WORKER_DATABASE_URL"  # the database the parent resolved


@click.command("api")
@click.option("--host", default=None, help="Listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="Port (default DIALTONE_HTTP_PORT).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="API processes sharing the port (each its own event loop and pool).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """Serve the query API; run `dialtone worker` (or `up`) to keep projections current."""
    stop = StopSignals().install()  # SIGTERM ends it as cleanly as Ctrl-C
    # The embedded server, if used, is left running (as by relay, worker and router): the
    # all-in-one commands (up, demo) are the ones that stop it, when last to use it.
    serve_api(settings, resolve_dsn(settings), host or settings.http_host,
              port or settings.http_port, stop, workers)


def serve_api(settings: Settings, database_url: str, host: str, port: int, stop: StopSignals,
              workers: int) -> None:
    """The API on ``host:port``: in this process, or from ``workers`` processes."""
    level, access_log = settings.log_level.lower(), settings.access_log
    if workers == 1:
        serve(bootstrap.http_app(database_url), host, port, stop, log_level=level,
              access_log=access_log)
        return
    os.environ[WORKERS_DSN] = database_url  # the workers are spawned with our environment
    serve_workers(WORKER_APP, workers, host, port, stop, log_level=level, access_log=access_log)


def worker_app() -> FastAPI:
    """The app of one API worker process (spawned by ``serve_workers``)."""
    settings = Settings()
    logs.configure("api", settings.log_level)  # as `dialtone` (cli.py) does for itself
    setup_tracing("api")
    app = bootstrap.http_app(os.environ[WORKERS_DSN], settings)
    freeze_startup_objects()
    return app
