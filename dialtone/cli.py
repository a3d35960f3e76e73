"""The ``dialtone`` console script. Each subcommand lives in dialtone/commands/."""

from __future__ import annotations

import logging

import click

from dialtone.commands import register
from dialtone.settings import Settings


@click.group()
@click.option("--log-level", default=None,
              help="Python log level (default from DIALTONE_LOG_LEVEL).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """dialtone: event-sourced call control for call centres."""
    settings = Settings()
    logging.basicConfig(
        level=(log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = settings


def main() -> None:
    register(cli)
    cli()
