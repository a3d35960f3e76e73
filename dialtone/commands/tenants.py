"""``dialtone tenants zone TENANT ZONE``: the tenant's time zone, where its day starts.

The supervisor's "today" figures run from local midnight in this zone
(docs/metrics.md); a new tenant is in UTC until this sets it.
"""

from __future__ import annotations

import asyncpg
import click

from application.identity import store
from dialtone.commands.users import with_connection
from dialtone.database import resolve_dsn
from dialtone.settings import Settings
from projections.kpi import check_time_zone


@click.group("tenants")
def command() -> None:
    """Tenant settings."""


@command.command("zone")
@click.argument("tenant")
@click.argument("zone")
@click.pass_obj
def zone(settings: Settings, tenant: str, zone: str) -> None:
    """Set TENANT's IANA time zone ZONE (e.g. Europe/Brussels)."""
    try:
        checked = check_time_zone(zone)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="ZONE") from None

    async def work(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await store.ensure_tenant(conn, tenant)
            await conn.execute("UPDATE tenants SET time_zone = $2 WHERE id = $1", tenant,
                               checked)

    with_connection(resolve_dsn(settings), work)
    click.echo(f"tenant {tenant}: time zone {checked}")
