"""``dialtone dev``: real backing services for development on one machine, no Docker."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import click

from devtools.kafka import KafkaBroker, KafkaBrokerError
from dialtone.settings import Settings


@click.group("dev")
def command() -> None:
    """Run development services (a real Kafka broker, ...) in the foreground."""


@command.command("kafka")
@click.option("--port", default=9092, show_default=True, help="Kafka (PLAINTEXT) port.")
@click.option("--controller-port", default=9093, show_default=True, help="KRaft controller port.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Broker data directory [default: DIALTONE_DATA_DIR/kafka].")
@click.pass_obj
def kafka(settings: Settings, port: int, controller_port: int, data_dir: Path | None) -> None:
    """Run a single-node Apache Kafka broker on 127.0.0.1 until Ctrl-C.

    The first run fetches the broker from Maven Central (needs mvn and Java 17+).
    """
    broker = KafkaBroker(data_dir or settings.data_dir / "kafka", port, controller_port)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        broker.start()
        click.echo(f"Kafka {broker.version} ready: DIALTONE_KAFKA_BOOTSTRAP={broker.bootstrap}")
        click.echo(f"data {broker.data_dir}, log {broker.log_file}; Ctrl-C stops it.")
        _wait_while_running(broker)
    except KeyboardInterrupt:
        click.echo("Stopping Kafka ...")
    except KafkaBrokerError as error:
        raise click.ClickException(str(error)) from error
    finally:
        broker.stop()


def _wait_while_running(broker: KafkaBroker) -> None:
    while broker.is_running():
        time.sleep(0.5)
    raise click.ClickException(f"Kafka broker exited on its own:\n{broker.log_tail()}")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # `kill`/systemd stop the command like Ctrl-C does: through the finally above.
    raise KeyboardInterrupt
