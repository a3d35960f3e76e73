"""The ``dialtone`` console script. Each subcommand lives in dialtone/commands/."""

from __future__ import annotations

import logging

import click

from dialtone.settings import Settings


@click.group()
@click.option("--log-level", default=None, help="Python log level (default from DIALTONE_LOG_LEVEL).")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """dialtone: event-sourced call control for call centres."""
    settings = Settings()
    logging.basicConfig(
        level=(log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = settings


def _register_commands() -> None:
    # Imported here so that `dialtone --help` names every subcommand while each
    # module stays small and owns its own imports.
    from dialtone.commands import register

    register(cli)


def main() -> None:
    _register_commands()
    cli()
