"""``dialtone rebuild NAME...``: rebuild projections from the event store while
the platform runs. The calls projections take the fast path (folded in memory,
written with COPY in one transaction); any other group is replayed through its
live path into a schema aside and swapped in, in one short transaction
(streams/rebuild.py, docs/history.md): readers never see it empty or half-built."""

from __future__ import annotations

import logging
from typing import Any

import click
from eventsourcing.application import Application
from tqdm import tqdm

from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.settings import Settings
from projections.calls import GROUP as CALLS_GROUP
from projections.calls import KIND as CALL_KIND
from projections.positions import is_poison
from streams.rebuild import JOBS, REBUILDABLE, rebuild, replay_group

log = logging.getLogger(__name__)

# Other groups are rebuilt whole, by replaying history through their live path
# aside, then swapped in.
GROUPS = {name: group for group in composition.PROJECTION_GROUPS for name in group.names
          if name not in REBUILDABLE}


@click.command("rebuild")
@click.argument("names", nargs=-1, required=True,
                type=click.Choice(sorted({*REBUILDABLE, *GROUPS})))
@click.option("--jobs", type=click.IntRange(1, 16), default=JOBS, show_default=True,
              help="Processes (each with its connection) a group whose apply is per aggregate "
              "(the call centre's) is replayed in at once.")
@click.pass_obj
def command(settings: Settings, names: tuple[str, ...], jobs: int) -> None:
    """Rebuild the named projections from history (e.g. `dialtone rebuild cdr`)."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    rebuild_projections(database_url, names, jobs)
    click.echo(f"rebuilt {', '.join(names)}")


# Every projection table, in the order `dialtone restore` rebuilds them.
ALL_PROJECTIONS = (*REBUILDABLE, *GROUPS)


def rebuild_projections(database_url: str, names: tuple[str, ...], jobs: int = JOBS) -> None:
    """Rebuild the named projections (fast path for calls, replay for the other groups)."""
    calls = tuple(n for n in names if n in REBUILDABLE)
    groups = {GROUPS[n] for n in names if n in GROUPS}
    for app in composition.event_sources(database_url):
        # Each group is rebuilt from the one event source that publishes its kinds.
        kinds = set(composition.relay_kinds(app))
        if calls and CALL_KIND in kinds:
            _rebuild_calls(app, database_url, calls, jobs)
        for group in groups:
            if group.kinds & kinds:
                with _progress(app) as bar:
                    replay_group(app, database_url, group, progress=bar.update, jobs=jobs)


def _rebuild_calls(app: Application[Any], database_url: str, names: tuple[str, ...],
                   jobs: int) -> None:
    """The fast path; if an event stops it (one the live path parks: its COPY holds the
    whole history), the calls group replayed through its live path, which parks it."""
    try:
        with _progress(app) as bar:
            rebuild(app, database_url, names, progress=bar.update)
    except Exception as error:
        if not is_poison(error):
            raise
        log.warning("rebuild of %s: an event the fast path cannot write (%s: %s); "
                    "replaying the calls group through its live path, which parks it",
                    ", ".join(names), type(error).__name__, str(error).splitlines()[0])
        with _progress(app) as bar:
            replay_group(app, database_url, CALLS_GROUP, progress=bar.update, jobs=jobs)


def _progress(app: Application[Any]) -> tqdm[Any]:
    total = app.recorder.max_notification_id() or 0
    return tqdm(total=total, unit="ev", desc=f"rebuild from {app.name}")
