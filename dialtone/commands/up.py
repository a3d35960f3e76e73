"""``dialtone up``: the whole platform in one process on its embedded default.

With nothing configured: the embedded PostgreSQL, migrations, the in-process
projection runner and webhook delivery, the call-centre routing process and the HTTP API
(and the recordings' uploader when DIALTONE_RECORDINGS_S3_* is set, the registrations'
observer when DIALTONE_REGISTRATION_REDIS_URL is). With
DATABASE_URL it uses that server; with DIALTONE_KAFKA_BOOTSTRAP it leaves
projections to `dialtone relay` + `dialtone worker`.

SIGTERM and SIGINT stop it the same way: the API, the B2BUA workers (kept running
by a supervisor until then), the runners, and the embedded server unless another
command on the same data directory still uses it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from application.recordings.settings import configured as recordings_configured
from dialtone import bootstrap
from dialtone.commands import webhooks
from dialtone.commands.api import serve_api
from dialtone.commands.b2bua import end_lost_worker_calls, spawn_worker
from dialtone.commands.users import PASSWORD_FILE, ensure_initial_admin, first_login_message
from dialtone.database import EVENT_TABLES_READY, release_embedded, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services.ports import busy_ports
from dialtone.services.processes import Supervisor
from dialtone.services.serving import StopSignals
from dialtone.settings import Settings
from streams.inprocess import InProcessProjectionRunner
from streams.routing_process import RoutingRunner
from streams.webhooks import EmbeddedWebhooks

if TYPE_CHECKING:
    from dialtone.commands.recordings import EmbeddedRecordings
    from dialtone.commands.registrations import EmbeddedRegistrations

log = logging.getLogger(__name__)

WORKER_HOST = "127.0.0.1"  # `dialtone b2bua`'s default --host, which up's workers use


def start_b2bua_workers(count: int, first_port: int, database_url: str,
                        settings: Settings) -> Supervisor:
    """`count` B2BUA workers on UDP first_port, first_port + 1, ... (logs in the data dir),
    each restarted on its port if it dies; with DIALTONE_METRICS_PORT set, each serves its
    metrics on that port plus its offset from first_port."""
    # The tables exist (the caller created them): workers starting together must
    # not all run the DDL again.
    env = {**os.environ, "DATABASE_URL": database_url, "DIALTONE_DATA_DIR": str(settings.data_dir),
           EVENT_TABLES_READY: "1"}
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    for port in range(first_port, first_port + count):
        metrics_port = worker_metrics_port(settings.metrics_port, first_port, port)
        supervisor.add(f"b2bua worker on udp {port}",
                       _worker_spawner(port, env, log_dir, metrics_port),
                       on_exit=lost_calls_ender(database_url, port))
    supervisor.start()
    return supervisor


def worker_metrics_port(first_metrics_port: int, first_sip_port: int, sip_port: int) -> int:
    """The metrics port of the worker on ``sip_port``: derived from its SIP port, so a
    restarted worker keeps its Prometheus target (0 when metrics are off)."""
    return first_metrics_port + (sip_port - first_sip_port) if first_metrics_port else 0


def _worker_spawner(port: int, env: dict[str, str], log_dir: os.PathLike[str] | str,
                    metrics_port: int = 0) -> Callable[[], subprocess.Popen[bytes]]:
    log_file = Path(log_dir) / f"b2bua-{port}.log"
    # Always explicit: a worker reading DIALTONE_METRICS_PORT would take the first's port.
    args = ["--host", WORKER_HOST, "--metrics-port", str(metrics_port)]
    # new_session: Ctrl-C reaches only us; we stop the workers in order.
    return lambda: spawn_worker(port, extra_args=args, env=env, log_file=log_file,
                                new_session=True)


def lost_calls_ender(database_url: str, port: int) -> Callable[[int], None]:
    """What the supervisor runs when the worker on ``port`` has died: its open calls are
    ended with cause ``worker_lost`` at once (the restarted worker would too, at its start,
    but a worker that cannot start must not leave them "answered")."""
    def end(_code: int) -> None:
        ended = end_lost_worker_calls(database_url, WORKER_HOST, port)
        if ended:
            log.warning("b2bua worker on udp %d died with %d calls open: ended", port,
                        len(ended))
    return end


def check_ports(host: str, port: int, sip_port: int, workers: int, metrics_port: int = 0,
                ) -> None:
    """Refuse, touching nothing, when a port this command would listen on is taken."""
    metrics = tuple(range(metrics_port, metrics_port + workers)) if metrics_port else ()
    busy = busy_ports(host, tcp=(port, *metrics), udp=tuple(range(sip_port, sip_port + workers)))
    if busy:
        raise click.ClickException(
            f"{', '.join(busy)} already in use (another dialtone on this machine?); "
            "choose others with --port / --sip-port or DIALTONE_HTTP_PORT / "
            "DIALTONE_METRICS_PORT")


@click.command("up")
@click.option("--host", default=None, help="HTTP listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="HTTP port (default DIALTONE_HTTP_PORT).")
@click.option("--b2bua-workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="SIP B2BUA worker processes to run (each holds one bridged call).")
@click.option("--sip-port", type=int, default=5070, show_default=True,
              help="UDP port of the first B2BUA worker; the others take the next ports.")
@click.option("--api-workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP API processes sharing the port (more than 1: the API leaves this "
              "process; see docs/deployment.md).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None, b2bua_workers: int,
            sip_port: int, api_workers: int) -> None:
    """Run the platform until Ctrl-C or SIGTERM."""
    host, port = host or settings.http_host, port or settings.http_port
    check_ports(host, port, sip_port, b2bua_workers, settings.metrics_port)
    stop = StopSignals().install()
    database_url = resolve_dsn(settings)
    workers: Supervisor | None = None
    runners: list[InProcessProjectionRunner | RoutingRunner | EmbeddedWebhooks
                  | EmbeddedRecordings | EmbeddedRegistrations] = []
    try:
        apply_migrations(database_url)
        admin_password = ensure_initial_admin(database_url, settings.data_dir)
        bootstrap.call_service(database_url)  # creates the event tables once, before workers
        bootstrap.callcentre_service(database_url)
        workers = start_b2bua_workers(b2bua_workers, sip_port, database_url, settings)
        if not settings.kafka_bootstrap:
            runners.extend(bootstrap.inprocess_runners(database_url))
            runners.append(webhooks.embedded(database_url))  # `dialtone webhooks` with Kafka
        runners.append(bootstrap.routing_runner(database_url))  # offers queued calls to agents
        if recordings_configured():  # docs/recordings.md; boto3 imported only then
            from dialtone.commands import recordings  # noqa: PLC0415
            runners.append(recordings.embedded(database_url, settings))
        redis_url = os.environ.get("DIALTONE_REGISTRATION_REDIS_URL")
        if redis_url:  # docs/edge.md, Registrar; redis imported only then
            from dialtone.commands import registrations  # noqa: PLC0415
            runners.append(registrations.EmbeddedRegistrations(database_url, redis_url))
        for runner in runners:
            runner.start()
        click.echo(f"dialtone is up: http://{host}:{port}/docs (API), /healthz; "
                   f"SIP on udp {sip_port}..{sip_port + b2bua_workers - 1}; Ctrl-C stops it")
        if admin_password is not None:  # the first start only
            click.echo(first_login_message(f"http://{host}:{port}", admin_password,
                                           settings.data_dir / PASSWORD_FILE))
        serve_api(settings, database_url, host, port, stop, api_workers)
    finally:
        if workers is not None:
            workers.stop()
        for runner in runners:
            runner.stop()
        release_embedded(settings)
