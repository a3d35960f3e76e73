"""``dialtone up``: the whole platform in one process on its embedded default.

With nothing configured: the embedded PostgreSQL, migrations, the in-process
projection runner, the call-centre routing process and the HTTP API. With
DATABASE_URL it uses that server; with DIALTONE_KAFKA_BOOTSTRAP it leaves
projections to `dialtone relay` + `dialtone worker`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

import click
import uvicorn

from dialtone import bootstrap
from dialtone.commands.b2bua import spawn_worker
from dialtone.database import embedded_server, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.inprocess import InProcessProjectionRunner
from streams.routing_process import RoutingRunner

log = logging.getLogger(__name__)


def start_b2bua_workers(count: int, first_port: int, database_url: str,
                        settings: Settings) -> list[subprocess.Popen[bytes]]:
    """`count` B2BUA workers on UDP first_port, first_port + 1, ... (logs in the data dir)."""
    env = {**os.environ, "DATABASE_URL": database_url, "DIALTONE_DATA_DIR": str(settings.data_dir)}
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return [spawn_worker(first_port + n, env=env, log_file=log_dir / f"b2bua-{first_port + n}.log",
                         new_session=True)  # Ctrl-C reaches us; we stop them in order
            for n in range(count)]


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@click.command("up")
@click.option("--host", default=None, help="HTTP listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="HTTP port (default DIALTONE_HTTP_PORT).")
@click.option("--b2bua-workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="SIP B2BUA worker processes to run (each holds one bridged call).")
@click.option("--sip-port", type=int, default=5070, show_default=True,
              help="UDP port of the first B2BUA worker; the others take the next ports.")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None, b2bua_workers: int,
            sip_port: int) -> None:
    """Run the platform until Ctrl-C."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    bootstrap.call_service(database_url)  # creates the event tables once, before workers
    bootstrap.callcentre_service(database_url)
    workers = start_b2bua_workers(b2bua_workers, sip_port, database_url, settings)
    runners: list[InProcessProjectionRunner | RoutingRunner] = (
        [] if settings.kafka_bootstrap else list(bootstrap.inprocess_runners(database_url)))
    runners.append(bootstrap.routing_runner(database_url))  # offers queued calls to agents
    for runner in runners:
        runner.start()
    host, port = host or settings.http_host, port or settings.http_port
    click.echo(f"dialtone is up: http://{host}:{port}/docs (API), /healthz; "
               f"SIP on udp {sip_port}..{sip_port + b2bua_workers - 1}; Ctrl-C stops it")
    try:
        uvicorn.run(bootstrap.http_app(database_url), host=host, port=port,
                    log_level=settings.log_level.lower())
    finally:
        stop_processes(workers)
        for runner in runners:
            runner.stop()
        if not settings.database_url:
            embedded_server(settings).stop()
            log.info("embedded PostgreSQL stopped")
