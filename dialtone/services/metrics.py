"""Starting a process's Prometheus metrics server from the settings (docs/observability.md)."""

from __future__ import annotations

from typing import Any

import click

from application.metrics import serve_metrics
from dialtone.settings import Settings


def start_metrics_server(settings: Settings, port: int | None = None) -> Any:
    """Serve this process's metrics on ``port`` (default DIALTONE_METRICS_PORT; 0: none).

    A port already taken stops the command with a clear message: a process whose
    metrics cannot be scraped would look down to Prometheus for ever."""
    chosen = settings.metrics_port if port is None else port
    try:
        return serve_metrics(chosen, settings.metrics_host)
    except OSError as error:
        raise click.ClickException(
            f"cannot serve metrics on {settings.metrics_host}:{chosen} ({error.strerror}); "
            "choose another DIALTONE_METRICS_PORT") from None
