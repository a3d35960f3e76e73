"""``dialtone migrate``: bring the projection schema up to date."""

from __future__ import annotations

import click

from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings


@click.command("migrate")
@click.pass_obj
def command(settings: Settings) -> None:
    """Apply pending SQL migrations (TimescaleDB path when available)."""
    applied = apply_migrations(resolve_dsn(settings))
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema up to date")
