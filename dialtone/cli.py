"""The ``dialtone`` console script. Each subcommand lives in dialtone/commands/
and is imported only when it runs (dialtone.commands.LazyGroup)."""

from __future__ import annotations

import click

from application.tracing import setup_tracing
from dialtone import logs
from dialtone.commands import LazyGroup
from dialtone.settings import Settings


@click.group(cls=LazyGroup)
@click.option("--log-level", default=None,
              help="Python log level (default from DIALTONE_LOG_LEVEL).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """dialtone: event-sourced call control for call centres."""
    settings = Settings()
    process = ctx.invoked_subcommand or "dialtone"
    logs.configure(process, log_level or settings.log_level)  # JSON lines, one schema
    setup_tracing(process)  # OTLP export only when OTEL_EXPORTER_OTLP_ENDPOINT is set
    ctx.obj = settings


def main() -> None:
    cli()
