"""``dialtone users``: the people who log in, and the first admin.

`ensure_initial_admin` is what the first ``dialtone up`` calls: it makes tenant
``default`` and user ``admin`` with a random password, keeps the password in a
0600 file in the data directory (as Jupyter and Grafana do) and returns it so
the caller prints it once. Passwords are prompted (hidden, twice) or, for
scripts, read from the first line of standard input (``--password-stdin``),
never taken from argv (where `ps` and shell histories would show them).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import click

from api.db import asyncpg_dsn
from api.schemas.call_control import DEVICE_PATTERN
from api.schemas.targets import KEY_PATTERN
from application.identity import service, store
from application.identity.credentials import API_KEY_PREFIX, parse_secret, random_password
from application.identity.model import DEFAULT_TENANT, Conflict, IdentityError, Role
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings

T = TypeVar("T")
INITIAL_ADMIN = "admin"
PASSWORD_FILE = "initial-admin-password"  # noqa: S105 - a file name, not a password
ROLES = click.Choice([r.value for r in Role])
# `list` of users and of keys: one tenant's, or every tenant's (the CLI is the operator's)
TENANT_FILTER = click.option("--tenant", default=None, help="Only this tenant (default: all).")
# store.set_user_device / set_user_agent: (conn, username, tenant or None, value) -> found
UserFieldSetter = Callable[[asyncpg.Connection, str, str | None, str | None], Awaitable[bool]]


def with_connection(database_url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on one connection to a migrated database (CLI commands are one-shot)."""
    apply_migrations(database_url)

    async def main() -> T:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def ensure_initial_admin(database_url: str, data_dir: Path) -> str | None:
    """On a database with no user yet: tenant `default`, user `admin` with a random
    password kept in `<data_dir>/initial-admin-password` (mode 0600). Returns the
    password when it made the user, None when users already existed."""
    password = random_password()

    async def work(conn: asyncpg.Connection) -> bool:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
            return False
        try:
            await service.add_user(conn, DEFAULT_TENANT, INITIAL_ADMIN, Role.ADMIN, password)
        except Conflict:  # another process made it first
            return False
        return True

    if not with_connection(database_url, work):
        return None
    write_secret_file(data_dir / PASSWORD_FILE, password)
    return password


def first_login_message(base_url: str, password: str, password_file: Path) -> str:
    """What the first `dialtone up` prints, once: the admin's name, password, where
    the password is kept, and how to log in."""
    return (
        f"first start: user {INITIAL_ADMIN!r} (tenant {DEFAULT_TENANT!r}) made with password\n"
        f"    {password}\n"
        f"  kept in {password_file} (mode 0600); shown only this once. Log in:\n"
        f"    curl -s -d username={INITIAL_ADMIN} -d \"password=$(cat {password_file})\" "
        f"{base_url}/v1/auth/token\n"
        f"  then send 'Authorization: Bearer <access_token>' (or open {base_url}/docs, "
        f"Authorize). Change it: dialtone users passwd {INITIAL_ADMIN}")


DEMO_KEY_FILE = "demo-api-key"


def demo_login(database_url: str, data_dir: Path, base_url: str) -> str:
    """`dialtone demo`'s credentials: the first admin if there is none yet, and a
    fresh supervisor key of its own kept in `<data_dir>/demo-api-key` (0600; the
    previous run's key is revoked). Returns what to print: how to use the key and
    how a person logs in. The key itself is never printed."""
    password = ensure_initial_admin(database_url, data_dir)
    key_file = data_dir / DEMO_KEY_FILE
    old = parse_secret(key_file.read_text().strip(), API_KEY_PREFIX) if key_file.exists() else None
    if old is not None:
        with_connection(database_url, lambda conn: store.revoke_key(conn, old.id, None))
    write_secret_file(key_file, issue_api_key(database_url, "demo", Role.SUPERVISOR))
    admin_file = data_dir / PASSWORD_FILE
    lines = [first_login_message(base_url, password, admin_file)] if password else []
    lines += [
        f"the demo's own API key (role supervisor) is in {key_file}:",
        f"    curl -s -H \"Authorization: Bearer $(cat {key_file})\" {base_url}/v1/agents",
        f"a person logs in with a username and password (user {INITIAL_ADMIN!r}: "
        + (f"password in {admin_file}" if admin_file.exists() else "password set at its "
           "first start") + "):",
        f"    curl -s -d username={INITIAL_ADMIN} -d password=... {base_url}/v1/auth/token",
    ]
    return "\n".join(lines)


def issue_api_key(database_url: str, account: str, role: Role = Role.ADMIN,
                  tenant: str = DEFAULT_TENANT) -> str:
    """A new API key for service account `account` (made if new): what `dialtone demo`
    and the tests use for their own calls. The key is returned, never printed here."""
    new = with_connection(database_url, lambda conn: service.create_api_key(
        conn, tenant, account, role, None))
    return new.key


def write_secret_file(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # an existing file keeps its mode otherwise
        file.write(text + "\n")


PASSWORD_STDIN = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from the first line of standard input instead of prompting "
    "for it (scripts: printf '%s\\n' \"$PASSWORD\" | dialtone users ...).")


def read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or prompted twice without echo."""
    if from_stdin:
        return click.get_text_stream("stdin").readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("users")
def command() -> None:
    """Add, list, disable users and set their passwords."""


@command.command("add")
@click.argument("username")
@click.option("--role", type=ROLES, required=True,
              help="What the user may do: admin, supervisor, analyst, integrator or agent "
              "(permissions per role: docs/security.md).")
@click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
              help="Tenant (call centre) the user belongs to; made if it does not exist.")
@PASSWORD_STDIN
@click.pass_obj
def add(settings: Settings, username: str, role: str, tenant: str,
        password_stdin: bool) -> None:
    """Add USERNAME to TENANT with ROLE; the password is prompted (or --password-stdin)."""
    password = read_password(password_stdin)
    try:
        user = with_connection(resolve_dsn(settings), lambda conn: service.add_user(
            conn, tenant, username, Role(role), password))
    except IdentityError as exc:  # name taken or not one the API could name, password too short
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {user.username} ({user.role.value}) to tenant {user.tenant}: {user.id}")


@command.command("device")
@click.argument("username")
@click.argument("uri", required=False)
@click.pass_obj
def device(settings: Settings, username: str, uri: str | None) -> None:
    """Set USERNAME's own phone (a SIP URI: what their monitor, whisper and barge
    ring); without URI, clear it."""
    _set_or_clear(settings, username, uri, DEVICE_PATTERN, "a SIP URI", "URI",
                  store.set_user_device)
    click.echo(f"device of {username}: {uri or 'none'}")


@command.command("agent")
@click.argument("username")
@click.argument("key", required=False)
@click.pass_obj
def agent(settings: Settings, username: str, key: str | None) -> None:
    """Make USERNAME the agent KEY of their tenant (a user of role agent acts on
    that agent only); without KEY, no agent."""
    _set_or_clear(settings, username, key, KEY_PATTERN, "an agent key", "KEY",
                  store.set_user_agent)
    click.echo(f"agent of {username}: {key or 'none'}")


def _set_or_clear(settings: Settings, username: str, value: str | None, pattern: str,
                  what: str, param: str, setter: UserFieldSetter) -> None:
    """Set one of USERNAME's optional fields (any tenant) to `value`, checked against
    `pattern` first; None clears it."""
    if value is not None and not re.fullmatch(pattern, value):
        raise click.BadParameter(f"not {what}: {value!r}", param_hint=param)
    if not with_connection(resolve_dsn(settings), lambda conn: setter(conn, username, None,
                                                                      value)):
        raise click.ClickException(f"no user {username}")


@command.command("list")
@TENANT_FILTER
@click.pass_obj
def list_(settings: Settings, tenant: str | None) -> None:
    """List users (never their passwords)."""
    users = with_connection(resolve_dsn(settings), lambda conn: store.list_users(conn, tenant))
    for user in users:
        state = "disabled" if user.disabled else "active"
        click.echo(f"{user.tenant}\t{user.username}\t{user.role.value}\t{state}\t{user.id}"
                   f"\t{user.agent or '-'}\t{user.device or '-'}")


@command.command("disable")
@click.argument("username")
@click.pass_obj
def disable(settings: Settings, username: str) -> None:
    """Disable USERNAME: logins fail, tokens stop working within seconds."""
    found = with_connection(resolve_dsn(settings), lambda conn: store.set_user_disabled(
        conn, username, None, disabled=True))
    if not found:
        raise click.ClickException(f"no user {username}")
    click.echo(f"disabled {username}")


@command.command("passwd")
@click.argument("username")
@PASSWORD_STDIN
@click.pass_obj
def passwd(settings: Settings, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password, prompted (or --password-stdin)."""
    password = read_password(password_stdin)
    try:
        found = with_connection(resolve_dsn(settings), lambda conn: service.change_password(
            conn, username, None, password))
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        raise click.ClickException(f"no user {username}")
    click.echo(f"password of {username} changed")
