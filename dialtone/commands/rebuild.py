"""``dialtone rebuild NAME...``: drop projections and rebuild them from the event store."""

from __future__ import annotations

import click
from tqdm import tqdm

from dialtone import bootstrap
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.rebuild import REBUILDABLE, rebuild


@click.command("rebuild")
@click.argument("names", nargs=-1, required=True, type=click.Choice(REBUILDABLE))
@click.pass_obj
def command(settings: Settings, names: tuple[str, ...]) -> None:
    """Rebuild the named projections (cdr, call_live, call_events) from history."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    service = bootstrap.call_service(database_url)
    total = service.recorder.max_notification_id() or 0
    with tqdm(total=total, unit="ev", desc="rebuild " + ",".join(names)) as bar:
        count = rebuild(service, database_url, names, progress=bar.update)
    click.echo(f"rebuilt {', '.join(names)} from {count} events")
