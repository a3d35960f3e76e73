"""``dialtone relay``: publish every stored event to Kafka, exactly once."""

from __future__ import annotations

import logging
import signal
import threading

import click
from kafka.errors import KafkaError

from application.follow import DATABASE_ERRORS
from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.kafka_settings import kafka_auth
from dialtone.migrations import apply_migrations
from dialtone.services.kafka_errors import kafka_trouble
from dialtone.services.metrics import start_metrics_server
from dialtone.settings import Settings
from streams.relay import Relay, RelayConfig, republish

log = logging.getLogger(__name__)


@click.command("relay")
@click.option("--page-size", default=2000, show_default=True,
              help="Events per Kafka transaction.")
@click.option("--from-position", type=click.IntRange(min=1),
              help="Republish from this store position, then exit (re-seeding lost topics).")
@click.option("--to-position", type=click.IntRange(min=1),
              help="Last position to republish (default: the store's head).")
@click.option("--application", "applications", multiple=True,
              help="With --from-position: only this event source (e.g. CallService).")
@click.pass_obj
def command(settings: Settings, page_size: int, from_position: int | None,
            to_position: int | None, applications: tuple[str, ...]) -> None:
    """Relay the event store's notification log to the dialtone.*.v1 topics."""
    if not settings.kafka_bootstrap:
        raise click.UsageError("set DIALTONE_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092)")
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    if from_position is None:  # the long-running relay, not a one-off republish
        start_metrics_server(settings)
    if from_position is not None:
        if to_position is not None and to_position < from_position:
            raise click.UsageError("--to-position is before --from-position")
        _republish(settings, database_url, page_size, from_position, to_position, applications)
        return
    relays = [
        Relay(app, database_url, RelayConfig(
            bootstrap=settings.kafka_bootstrap, page_size=page_size,
            topic_prefix=settings.topic_prefix, kinds=composition.relay_kinds(app),
            auth=kafka_auth(settings)))
        for app in composition.event_sources(database_url)
    ]
    failed: list[str] = []

    def stop(*_: object) -> None:
        for relay in relays:
            relay.stop()

    def run(relay: Relay) -> None:
        # Outages while running are ridden out inside Relay.run. What reaches
        # here stops them all and the command exits 1, so a supervisor notices
        # rather than seeing a clean exit: Kafka unreachable or refusing at start
        # (wrong SASL credentials), refusing the relay's rights later, or a bug.
        try:
            relay.run()
        except Exception as error:
            failed.append(relay.app.name)
            if isinstance(error, KafkaError):
                log.error("relay %s stopped: %s", relay.app.name, kafka_trouble(settings, error))
            elif isinstance(error, DATABASE_ERRORS):
                log.error("relay %s stopped: PostgreSQL unavailable at start: %s: %s",
                          relay.app.name, type(error).__name__, error)
            else:
                log.exception("relay %s stopped: %s", relay.app.name, type(error).__name__)
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


def _republish(settings: Settings, database_url: str, page_size: int, first: int,
               last: int | None, applications: tuple[str, ...]) -> None:
    """Positions first..last of each chosen application's log, once (docs/operations.md)."""
    assert settings.kafka_bootstrap
    sources = composition.event_sources(database_url)
    unknown = set(applications) - {app.name for app in sources}
    if unknown:
        raise click.UsageError(f"unknown application(s) {sorted(unknown)}; "
                               f"choose from {[app.name for app in sources]}")
    for app in sources:
        if applications and app.name not in applications:
            continue
        head = app.recorder.max_notification_id() or 0
        config = RelayConfig(bootstrap=settings.kafka_bootstrap, page_size=page_size,
                             topic_prefix=settings.topic_prefix,
                             kinds=composition.relay_kinds(app), auth=kafka_auth(settings))
        try:
            count = republish(app, config, first, min(last or head, head))
        except KafkaError as error:  # as the live relay says it, without a traceback
            raise click.ClickException(
                f"relay {app.name} stopped: {kafka_trouble(settings, error)}") from None
        click.echo(f"republished {count} events of {app.name} "
                   f"(positions {first}..{min(last or head, head)})")
