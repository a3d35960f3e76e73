"""``dialtone tenants zone TENANT ZONE [--create]``: the tenant's time zone, where its day starts.

The supervisor's "today" figures run from local midnight in this zone
(docs/metrics.md); a new tenant is in UTC until this sets it. Only a tenant
that exists is changed, unless ``--create`` says to make it: a mistyped id
would otherwise be a new tenant that nothing uses.
"""

from __future__ import annotations

import asyncpg
import click

from application.identity import store
from application.identity.model import IdentityError, check_tenant_id
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
@click.option("--create", is_flag=True,
              help="Make TENANT if it does not exist (otherwise a tenant that does not "
              "exist is refused).")
@click.pass_obj
def zone(settings: Settings, tenant: str, zone: str, create: bool) -> None:
    """Set TENANT's IANA time zone ZONE (e.g. Europe/Brussels)."""
    try:
        checked = check_time_zone(zone)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="ZONE") from None

    async def work(conn: asyncpg.Connection) -> bool:
        async with conn.transaction():
            if create:
                await store.ensure_tenant(conn, tenant)
            status = await conn.execute("UPDATE tenants SET time_zone = $2 WHERE id = $1",
                                        tenant, checked)
            return bool(status != "UPDATE 0")

    try:
        check_tenant_id(tenant)  # before connecting: an id no tenant could have
        found = with_connection(resolve_dsn(settings), work)
    except IdentityError as error:
        raise click.ClickException(str(error)) from None
    if not found:
        raise click.ClickException(f"no tenant {tenant} (--create makes it)")
    click.echo(f"tenant {tenant}: time zone {checked}")
