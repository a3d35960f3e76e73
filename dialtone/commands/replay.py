"""``dialtone replay --until T --schema NAME``: every projection as of T, built
into a separate schema for audits and what-ifs, leaving the live tables alone.

Each projection group is replayed from the event store that publishes its
kinds, keeping the events that occurred at or before T (docs/history.md), into
tables made with the live tables' DDL in NAME (streams/rebuild.py
`replay_until`). Read them with ``SET search_path TO NAME`` or ``NAME.cdr``;
``DROP SCHEMA NAME CASCADE`` when done.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click
from tqdm import tqdm

from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from streams.rebuild import JOBS, replay_until

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PastInstant(click.ParamType):
    """An RFC 3339 instant with an offset (``2026-03-02T09:30:00Z``), not in the future."""

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 instant", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{value!r} has no offset (add Z or +01:00)", param, ctx)
        if moment > datetime.now(UTC):
            self.fail(f"{value!r} is in the future", param, ctx)
        return moment.astimezone(UTC)


def _schema(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not SCHEMA_NAME.match(value):
        raise click.BadParameter("lower-case letters, digits and _, at most 63")
    return value


@click.command("replay")
@click.option("--until", "until", type=PastInstant(), required=True,
              help="Keep the events that occurred at or before this instant.")
@click.option("--schema", "schema", required=True, callback=_schema,
              help="The new schema to build the projections in (must not exist).")
@click.option("--jobs", type=click.IntRange(1, 16), default=JOBS, show_default=True,
              help="Processes (each with its connection) the call-centre group is applied in "
              "at once.")
@click.pass_obj
def command(settings: Settings, until: datetime, schema: str, jobs: int) -> None:
    """Build every projection as of --until into a new schema (live tables untouched)."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    apps = composition.event_sources(database_url)
    sources = [(app, composition.relay_kinds(app)) for app in apps]
    total = sum(app.recorder.max_notification_id() or 0 for app in apps)
    try:
        with tqdm(total=total, unit="ev", desc=f"replay into {schema}") as bar:
            count = replay_until(sources, database_url, composition.PROJECTION_GROUPS, until,
                                 schema, progress=bar.update, jobs=jobs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--schema") from error
    finally:
        for app in apps:
            app.close()
    click.echo(f"replayed {count} events as of {until.isoformat()} into schema {schema}")
