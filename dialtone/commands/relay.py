"""``dialtone relay``: publish every stored event to Kafka, exactly once."""

from __future__ import annotations

import logging
import signal
import threading

import click

from dialtone import bootstrap
from dialtone.database import resolve_dsn
from dialtone.kafka_settings import kafka_auth
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.relay import Relay, RelayConfig

log = logging.getLogger(__name__)


@click.command("relay")
@click.option("--page-size", default=2000, show_default=True,
              help="Events per Kafka transaction.")
@click.pass_obj
def command(settings: Settings, page_size: int) -> None:
    """Relay the event store's notification log to the dialtone.*.v1 topics."""
    if not settings.kafka_bootstrap:
        raise click.UsageError("set DIALTONE_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092)")
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    relays = [
        Relay(app, database_url, RelayConfig(
            bootstrap=settings.kafka_bootstrap, page_size=page_size,
            topic_prefix=settings.topic_prefix, kinds=bootstrap.relay_kinds(app),
            auth=kafka_auth(settings)))
        for app in bootstrap.event_sources(database_url)
    ]
    failed: list[str] = []

    def stop(*_: object) -> None:
        for relay in relays:
            relay.stop()

    def run(relay: Relay) -> None:
        # A relay that cannot reach Kafka (unreachable, or refused: wrong SASL
        # credentials) stops them all and the command exits 1, so a supervisor
        # notices and restarts it rather than seeing a clean exit.
        try:
            relay.run()
        except Exception as error:
            failed.append(relay.app.name)
            who = settings.kafka_sasl_username or "anonymous"
            log.error("relay %s stopped: could not work with Kafka at %s as %s (%s): %s: %s",
                      relay.app.name, settings.kafka_bootstrap, who,
                      settings.kafka_security_protocol, type(error).__name__, error)
            stop()

    threads = [threading.Thread(target=run, args=(relay,), name=f"relay-{relay.app.name}")
               for relay in relays]

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise SystemExit(1)
