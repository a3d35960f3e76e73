"""``dialtone registrations``: records the registrar's bindings as device events and
keeps agents on registering devices in step with them (issue 14 §1, docs/edge.md).

It reads the Redis database Kamailio's registrar writes (registrar.cfg's
REGISTRATION_REDIS_URL) every ``--interval`` seconds. Run one per deployment,
beside the router. A second one at the same time records nothing twice (each
change is an event version the store takes once), and whichever loses a race
decides again on the winner's record; one that is stopped a while loses
nothing (each observation re-reads the whole Redis).

Its metrics (dialtone_registrations_*, docs/observability.md) are served on
DIALTONE_METRICS_PORT like the other processes'; under `dialtone up` they are on
up's own /metrics.
"""

from __future__ import annotations

import logging
import signal
import threading

import click
import redis

from adapters.registrar.bindings import BindingsObserver
from application.callcentre import CallCentreService
from application.heartbeats import Heartbeat, host_instance
from application.registrations import RegistrationService
from dialtone.database import eventsourcing_env, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services.metrics import start_metrics_server
from dialtone.settings import Settings

log = logging.getLogger(__name__)

REDIS_URL_ENV = "DIALTONE_REGISTRATION_REDIS_URL"
HEARTBEAT_SERVICE = "registrations"  # its service_heartbeats row (docs/health.md)


class EmbeddedRegistrations:
    """The observer in a thread of ``dialtone up``, on services of its own."""

    def __init__(self, database_url: str, redis_url: str, interval_s: float = 2.0) -> None:
        env = eventsourcing_env(database_url)
        self.registrations = RegistrationService(env=env)
        self.centre = CallCentreService(env=env)
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.heartbeat = Heartbeat(database_url, HEARTBEAT_SERVICE, host_instance())
        self.observer = BindingsObserver(self.registrations, self.client, database_url,
                                         callcentre=self.centre, interval_s=interval_s,
                                         beat=self.heartbeat.tick)
        self._thread = threading.Thread(target=self.observer.run, name="registrations",
                                        daemon=True)

    def start(self) -> None:
        self.heartbeat.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        clean = self._thread.is_alive()  # one that ended by itself died of an error
        self.observer.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.heartbeat.stop(clean=clean)
        self.client.close()
        self.centre.close()
        self.registrations.close()


@click.command("registrations")
@click.option("--redis-url", envvar=REDIS_URL_ENV, required=True,
              help="The registrar's Redis database, redis://host:port/db "
                   "(env DIALTONE_REGISTRATION_REDIS_URL).")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
              help="Seconds between two observations.")
@click.pass_obj
def command(settings: Settings, redis_url: str, interval: float) -> None:
    """Observe the registrar's bindings until SIGTERM/Ctrl-C."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    start_metrics_server(settings)  # dialtone_registrations_* (its observer's series)
    env = eventsourcing_env(database_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    heartbeat = Heartbeat(database_url, HEARTBEAT_SERVICE, host_instance())
    with RegistrationService(env=env) as registrations, CallCentreService(env=env) as centre:
        observer = BindingsObserver(registrations, client, database_url, callcentre=centre,
                                    interval_s=interval, beat=heartbeat.tick)
        signal.signal(signal.SIGTERM, lambda *_: observer.stop())
        signal.signal(signal.SIGINT, lambda *_: observer.stop())
        thread = threading.Thread(target=observer.run, name="registrations", daemon=True)
        heartbeat.start()
        thread.start()
        log.info("registrations: observing the registrar every %.1f s", interval)
        while thread.is_alive():
            thread.join(0.5)  # the main thread stays free for the signal handlers
    heartbeat.stop(clean=observer.stopped)  # died of an error: the row goes stale
    client.close()
    if not observer.stopped:
        # The observer died of an error it does not retry (logged by the thread):
        # exit non-zero so the supervisor (compose, Kubernetes) restarts it as failed.
        raise SystemExit(1)
