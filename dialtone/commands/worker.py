"""``dialtone worker``: a Faust worker applying Kafka events to the projections."""

from __future__ import annotations

import click
import faust
from kafka.errors import KafkaError

from dialtone import composition, logs
from dialtone.database import resolve_dsn
from dialtone.kafka_settings import kafka_auth
from dialtone.migrations import apply_migrations
from dialtone.services.kafka_errors import kafka_trouble
from dialtone.services.metrics import start_metrics_server
from dialtone.settings import Settings
from streams.worker import ProjectionWorkerConfig, create_app, ensure_source_topics


@click.command("worker")
@click.option("--web-port", type=int, default=None,
              help="Expose Faust's web/metrics server on this port (off by default).")
@click.pass_obj
def command(settings: Settings, web_port: int | None) -> None:
    """Consume the dialtone topics and keep the projections up to date."""
    if not settings.kafka_bootstrap:
        raise click.UsageError("set DIALTONE_KAFKA_BOOTSTRAP (e.g. 127.0.0.1:9092)")
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    start_metrics_server(settings)
    config = ProjectionWorkerConfig(bootstrap=settings.kafka_bootstrap, database_url=database_url,
                          web_port=web_port, topic_prefix=settings.topic_prefix,
                          app_id=f"{settings.topic_prefix}dialtone-projections",
                          auth=kafka_auth(settings),
                          data_dir=str(settings.data_dir / "faust"))
    try:
        ensure_source_topics(config, composition.PROJECTION_GROUPS)
    except KafkaError as error:  # unreachable or refusing us: one line, as the relay says it
        raise click.ClickException(f"worker stopped: {kafka_trouble(settings, error)}") from None
    app = create_app(config, composition.PROJECTION_GROUPS)
    # Faust sets logging up again at start: hand it ours, or it replaces the JSON handler.
    faust.Worker(app, loglevel=settings.log_level.lower(),
                 logging_config=logs.logging_config("worker", settings.log_level),
                 ).execute_from_commandline()
