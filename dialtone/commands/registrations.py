"""``dialtone registrations``: records the registrar's bindings as device events and
keeps agents on registering devices in step with them (issue 14 §1, docs/edge.md).

It reads the Redis database Kamailio's registrar writes (registrar.cfg's
REGISTRATION_REDIS_URL) every ``--interval`` seconds. Run one per deployment,
beside the router: a second one is harmless (each change is recorded once, by
optimistic concurrency) but only adds conflicts.
"""

from __future__ import annotations

import logging
import signal
import threading

import click
import redis

from adapters.registrar.bindings import BindingsObserver
from application.callcentre import CallCentreService
from application.registrations import RegistrationService
from dialtone.database import eventsourcing_env, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings

log = logging.getLogger(__name__)


@click.command("registrations")
@click.option("--redis-url", envvar="DIALTONE_REGISTRATION_REDIS_URL", required=True,
              help="The registrar's Redis database, redis://host:port/db "
                   "(env DIALTONE_REGISTRATION_REDIS_URL).")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
              help="Seconds between two observations.")
@click.pass_obj
def command(settings: Settings, redis_url: str, interval: float) -> None:
    """Observe the registrar's bindings until SIGTERM/Ctrl-C."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    env = eventsourcing_env(database_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    with RegistrationService(env=env) as registrations, CallCentreService(env=env) as centre:
        observer = BindingsObserver(registrations, client, database_url, callcentre=centre,
                                    interval_s=interval)
        signal.signal(signal.SIGTERM, lambda *_: observer.stop())
        signal.signal(signal.SIGINT, lambda *_: observer.stop())
        thread = threading.Thread(target=observer.run, name="registrations", daemon=True)
        thread.start()
        log.info("registrations: observing the registrar every %.1f s", interval)
        while thread.is_alive():
            thread.join(0.5)  # the main thread stays free for the signal handlers
    client.close()
