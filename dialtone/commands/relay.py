"""``dialtone relay``: publish every stored event to Kafka, exactly once."""

from __future__ import annotations

import signal
import threading

import click

from dialtone import bootstrap
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.relay import Relay, RelayConfig


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
            topic_prefix=settings.topic_prefix, kinds=bootstrap.relay_kinds(app)))
        for app in bootstrap.event_sources(database_url)
    ]
    threads = [threading.Thread(target=relay.run, name=f"relay-{relay.app.name}")
               for relay in relays]

    def stop(*_: object) -> None:
        for relay in relays:
            relay.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
