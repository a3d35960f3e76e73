"""``dialtone keys``: API keys of service accounts (integrators, machines).

A key is printed once, at creation; only its hash is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from application.identity import service, store
from application.identity.model import DEFAULT_TENANT, IdentityError, Role
from dialtone.commands.users import ROLES, TENANT_FILTER, with_connection
from dialtone.database import resolve_dsn
from dialtone.settings import Settings

MAX_EXPIRES_DAYS = 36500  # a century; a date past year 9999 is no date at all


@click.group("keys")
def command() -> None:
    """Create, list and revoke API keys."""


@command.command("create")
@click.argument("account")
@click.option("--role", type=ROLES, default=Role.INTEGRATOR.value, show_default=True,
              help="Role of the service account when it is new.")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
              help="Tenant of ACCOUNT (an account is one tenant's; the tenant is made if "
              "it does not exist). The key acts in this tenant only.")
@click.option("--expires-days", type=click.IntRange(1, MAX_EXPIRES_DAYS), default=None,
              help=f"Days until the key expires, 1 to {MAX_EXPIRES_DAYS} (default: never).")
@click.pass_obj
def create(settings: Settings, account: str, role: str, tenant: str,
           expires_days: int | None) -> None:
    """Create a key for service account ACCOUNT (made if new) and print it once."""
    expires_at = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        new = with_connection(resolve_dsn(settings), lambda conn: service.create_api_key(
            conn, tenant, account, Role(role), expires_at))
    except IdentityError as exc:  # an account name the API could not name
        raise click.ClickException(str(exc)) from None
    click.echo(f"key {new.key_id} for {new.account.name} ({new.account.role.value}, tenant "
               f"{new.account.tenant}); shown once, keep it now:", err=True)
    click.echo(new.key)


@command.command("list")
@TENANT_FILTER
@click.pass_obj
def list_(settings: Settings, tenant: str | None) -> None:
    """List keys (never their secrets)."""
    keys = with_connection(resolve_dsn(settings), lambda conn: store.list_keys(conn, tenant))
    for key in keys:
        state = "revoked" if key.revoked else "active"
        expiry = key.expires_at.isoformat() if key.expires_at else "never"
        click.echo(f"{key.tenant}\t{key.key_id}\t{key.account}\t{key.role.value}\t{state}\t"
                   f"expires {expiry}")


@command.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke(settings: Settings, key_id: str) -> None:
    """Revoke KEY_ID: it stops working within seconds."""
    if not with_connection(resolve_dsn(settings), lambda conn: store.revoke_key(conn, key_id,
                                                                                 None)):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked {key_id}")
