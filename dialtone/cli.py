"""The ``dialtone`` console script. Each subcommand lives in dialtone/commands/
and is imported only when it runs (dialtone.commands.LazyGroup)."""

from __future__ import annotations

import os
import re
import sys
import traceback

import click

from application.tracing import setup_tracing
from dialtone import logs
from dialtone.commands import LazyGroup
from dialtone.settings import Settings

# SQLSTATE classes of a server refusing the connection itself: connection exception,
# invalid authorization, no such database, shutting down or starting up.
_CONNECTION_STATES = ("08", "28", "3D", "57P")


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
    try:
        cli()
    except Exception as error:
        if not database_unreachable(error):
            raise
        # One line for the operator, as click prints its own errors: a traceback says
        # nothing more about a database that is down, moved or refusing us.
        click.echo(f"Error: database unreachable ({describe(error)})", err=True)
        raise SystemExit(1) from None


def database_unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (or refused to let us in),
    rather than that a statement failed on a working connection."""
    import psycopg  # noqa: PLC0415 - what every database command imports anyway
    from eventsourcing import persistence  # noqa: PLC0415

    from dialtone.services.postgres import EmbeddedPostgresError  # noqa: PLC0415

    if isinstance(error, persistence.OperationalError | persistence.InterfaceError):
        error = error.__cause__ or error  # eventsourcing wraps psycopg's
    if isinstance(error, EmbeddedPostgresError):
        return True
    if isinstance(error, psycopg.OperationalError):  # statement timeouts, locks... are too
        return error.sqlstate is None or error.sqlstate.startswith(_CONNECTION_STATES)
    # asyncpg raises the socket's own errors (ConnectionRefusedError, gaierror...) and
    # the server's refusals while it connects: anything out of its connect code.
    connect = sys.modules.get("asyncpg.connect_utils")
    return connect is not None and any(
        frame.f_code.co_filename == connect.__file__
        for frame, _ in traceback.walk_tb(error.__traceback__))


def describe(error: BaseException) -> str:
    """`error`'s message on one line (an embedded server's log tail left out), with any
    password of a connection string masked."""
    text = str(error).split("\n--- server log ---")[0]
    if isinstance(error, OSError) and error.errno and error.errno > 0 and error.strerror:
        text = f"{os.strerror(error.errno)}: {error.strerror}"  # asyncio's "Connect call failed"
    text = " ".join(text.split())[:500] or type(error).__name__
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]+@", r"\1***@", text)
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)
    password = _password(os.environ.get("DATABASE_URL", ""))
    return text.replace(password, "***") if password else text


def _password(dsn: str) -> str | None:
    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        password = conninfo_to_dict(dsn).get("password") if dsn else None
    except psycopg.ProgrammingError:  # a DSN psycopg cannot parse names no password it knows
        return None
    return str(password) if password else None
