"""``dialtone webhooks``: webhook delivery in the distributed deployment.

A kafka-python consumer group (``<prefix>dialtone-webhooks``) on every dialtone
topic queues the deliveries, and a dispatcher sends them; run as many as you like
(the group shares the partitions, the dispatchers share the queue by leases).
`dialtone up` runs the embedded equivalent (`embedded`) when Kafka is not set.
Its metrics are served on DIALTONE_METRICS_PORT, like `dialtone relay`'s.
"""

from __future__ import annotations

import logging

import click

from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.kafka_settings import kafka_auth
from dialtone.migrations import apply_migrations
from dialtone.services.metrics import start_metrics_server
from dialtone.services.signals import StopSignals
from dialtone.settings import Settings
from projections import callcentre, calls
from streams.topics import topic_for
from streams.webhooks import CONSUMER_GROUP, DispatcherThread, EmbeddedWebhooks, KafkaFollower

log = logging.getLogger(__name__)


def embedded(database_url: str) -> EmbeddedWebhooks:
    """The in-process followers (one per event store) and a dispatcher, for `dialtone up`."""
    return EmbeddedWebhooks(composition.event_sources(database_url), database_url)


def topics(prefix: str) -> list[str]:
    """Every topic the relay publishes."""
    return sorted(topic_for(kind, prefix) for kind in {calls.KIND, *callcentre.KINDS})


@click.command("webhooks")
@click.pass_obj
def command(settings: Settings) -> None:
    """Deliver webhooks from the Kafka topics until Ctrl-C or SIGTERM."""
    if not settings.kafka_bootstrap:
        raise click.UsageError("set DIALTONE_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092); without "
                               "Kafka, `dialtone up` delivers webhooks itself")
    stop = StopSignals().install()
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    start_metrics_server(settings)  # dialtone_webhook_* (docs/observability.md)
    follower = KafkaFollower(settings.kafka_bootstrap, topics(settings.topic_prefix),
                             database_url, group_id=f"{settings.topic_prefix}{CONSUMER_GROUP}",
                             auth=kafka_auth(settings))
    stop.stopper = follower.stop
    if stop.requested.is_set():  # a signal before the stopper was set
        follower.stop()
    dispatcher = DispatcherThread(database_url)
    dispatcher.start()
    click.echo("dialtone webhooks: delivering; Ctrl-C stops")
    try:
        follower.run()  # outages are ridden out; Kafka refusing us ends it (exit 1)
    finally:
        follower.close()
        dispatcher.stop()
