"""``dialtone restore BACKUP``: a backup into an empty database, then every projection rebuilt.

Order matters because migrations are forward-only and may transform data:

1. the migrations the backup's database had applied (its yoyo log, from the
   manifest) create the schema the rows were dumped from;
2. the event tables are created by eventsourcing, as on any first start;
3. pg_restore loads the rows and the sequences' values in one transaction;
4. the remaining migrations (those of a newer release) run over restored data,
   exactly as they would have on the original database;
5. every projection is rebuilt from the restored events (`dialtone rebuild`'s code),
   and the webhook followers resume where the backup's had queued.

The TimescaleDB and plain variants only differ in projection tables, which
are never dumped, so a backup restores on either kind of server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from dialtone import composition
from dialtone.commands.backup import ARCHIVE, FORMAT, MANIFEST
from dialtone.commands.rebuild import ALL_PROJECTIONS, rebuild_projections
from dialtone.database import MIGRATIONS_DIR, resolve_dsn
from dialtone.kafka_settings import kafka_auth
from dialtone.migrations import apply_migrations, yoyo_url
from dialtone.services import pg_tools
from dialtone.settings import Settings
from projections import positions
from streams.topic_tail import last_committed_position
from streams.topics import topic_for
from streams.webhooks import POSITION_NAME as WEBHOOKS_POSITION


@click.command("restore")
@click.argument("backup_dir", metavar="BACKUP",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
def command(settings: Settings, backup_dir: Path) -> None:
    """Restore BACKUP (a `dialtone backup` directory) into an empty database."""
    manifest = read_manifest(backup_dir)
    check_archive(backup_dir)
    database_url = resolve_dsn(settings)
    refuse_non_empty(database_url)
    started = time.monotonic()
    try:
        restore(database_url, backup_dir, manifest)
    except pg_tools.PgToolError as error:
        raise click.ClickException(
            f"{error}\nThe restore stopped half-way: drop the database and create it again "
            "(dropdb, createdb) before restoring into it.") from None
    restored = time.monotonic()
    rebuild_projections(database_url, ALL_PROJECTIONS)
    mark_unfed_sources(database_url, manifest["heads"])
    place_webhook_followers(database_url, manifest)
    rebuilt = time.monotonic()
    events = sum(manifest["heads"].values())
    click.echo(f"restored {events} events ({_heads(manifest)}) in {restored - started:.1f}s; "
               f"rebuilt {len(ALL_PROJECTIONS)} projections in {rebuilt - restored:.1f}s")
    for table, rows in row_counts(database_url, ALL_PROJECTIONS).items():
        click.echo(f"  {table}: {rows} rows")
    _check_topics(settings, manifest["heads"])


def _check_topics(settings: Settings, heads: dict[str, int]) -> None:
    """Warn when Kafka already holds positions past the restored heads.

    The relay resumes after the highest position on its topics; events the
    restored store appends next would reuse positions published before the
    loss, and be skipped. The way out is a new topic prefix (docs/operations.md).
    """
    if not settings.kafka_bootstrap:
        click.echo("Kafka: not configured (DIALTONE_KAFKA_BOOTSTRAP); if the platform uses it, "
                   "check the topics against these heads before starting the relay "
                   "(docs/operations.md).")
        return
    kinds = {app.name: composition.relay_kinds(app) for app in
             composition.event_sources(resolve_dsn(settings))}
    for name, head in heads.items():
        topics = [topic_for(kind, settings.topic_prefix) for kind in kinds[name]]
        try:
            published = last_committed_position(settings.kafka_bootstrap, topics,
                                                 auth=kafka_auth(settings))
        except Exception as error:  # the restore itself is done: report, do not fail it
            click.echo(f"WARNING: could not read {', '.join(topics)} ({error!r}): check them "
                       f"against head {head} before starting the relay.", err=True)
            continue
        if published > head:
            click.echo(f"WARNING: {', '.join(topics)} hold {name} positions up to {published}, "
                       f"past the restored head {head}: do not start the relay on these "
                       "topics; use a new DIALTONE_TOPIC_PREFIX (docs/operations.md).", err=True)
        else:
            click.echo(f"Kafka: {name} topics end at position {published} <= head {head}: "
                       "the relay can resume on them.")


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{backup_dir} is not a dialtone backup: {error}") from error
    if manifest.get("format") != FORMAT or not (backup_dir / ARCHIVE).is_file():
        raise click.ClickException(f"{backup_dir}: unknown backup format "
                                   f"{manifest.get('format')!r} or missing {ARCHIVE}")
    return manifest


def check_archive(backup_dir: Path) -> None:
    """Read the backup's archive through before the database is touched: a truncated
    one would fail half-way, leaving a database no restore accepts."""
    archive = backup_dir / ARCHIVE
    try:
        pg_tools.check_archive(archive)
    except pg_tools.PgToolError as error:
        raise click.ClickException(f"{archive} is damaged or incomplete ({error}); "
                                   "the database was not touched") from None


def refuse_non_empty(database_url: str) -> None:
    """Restoring over live data would mix two histories: only an empty database will do."""
    with psycopg.connect(database_url) as conn:
        name = conn.info.dbname
        tables = [row[0] for row in conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname NOT IN"
            " ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 5")]
    if tables:
        raise click.ClickException(
            f"database {name!r} is not empty (it has tables: {', '.join(tables)}...). "
            "Restore needs an empty database: create a new one (createdb) and point "
            "DATABASE_URL at it.")


def restore(database_url: str, backup_dir: Path, manifest: dict[str, Any]) -> None:
    """Steps 1-4 of the module's docstring."""
    ids = {m["id"] for m in manifest["migrations"]}
    unknown = ids - {m.id for m in read_migrations(*map(str, _all_migration_dirs()))}
    if unknown:
        # A rollback restores a backup taken *before* the upgrade, with the old release.
        raise click.ClickException(
            f"the backup's schema is newer than this release (migrations {sorted(unknown)} "
            "unknown): restore it with the release that made it")
    _apply_backup_migrations(database_url, ids)
    # Creates the event tables, the kept stores' too (their rows are in the archive).
    for app in (*composition.event_sources(database_url), *composition.kept_stores(database_url)):
        app.close()
    pg_tools.restore_data(database_url, backup_dir / ARCHIVE)
    apply_migrations(database_url)


def _apply_backup_migrations(database_url: str, ids: set[str]) -> None:
    """The schema migrations the backup's database had applied, and nothing newer.

    Only migrations/schema: the variant directories (timescale, plain) shape
    projection tables alone, which are empty until the rebuild anyway.
    """
    backend = get_backend(yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR / "schema")).filter(lambda m: m.id in ids)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))


def mark_unfed_sources(database_url: str, heads: dict[str, int]) -> None:
    """Record each source's head for the groups it does not feed.

    The rebuild records positions only where a source feeds a group; the
    in-process runner resumes from the lowest position over all its groups, so
    without these it would read the whole log again (harmlessly, every
    projection being version-gated, but for nothing).
    """
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        for app in composition.event_sources(database_url):
            kinds = set(composition.relay_kinds(app))
            for group in composition.PROJECTION_GROUPS:
                if not group.kinds & kinds:
                    positions.record(cur, group.names, f"store:{app.name}", heads[app.name])
            app.close()


def place_webhook_followers(database_url: str, manifest: dict[str, Any]) -> None:
    """Each store's webhook follower resumes where it had queued at the backup (the
    queue was restored with it), or at the head when it had never run: a follower
    without a position would read the whole log and send every subscriber its
    history again."""
    queued: dict[str, int] = manifest.get("webhook_positions", {})  # older backups: none
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        for app, head in manifest["heads"].items():
            source = f"store:{app}"
            positions.record(cur, (WEBHOOKS_POSITION,), source, queued.get(source, head))


def _all_migration_dirs() -> list[Path]:
    return [MIGRATIONS_DIR / name for name in ("schema", "plain", "timescale")]


def row_counts(database_url: str, tables: tuple[str, ...]) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        counts = {}
        for table in tables:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def _heads(manifest: dict[str, Any]) -> str:
    return ", ".join(f"{name} to {head}" for name, head in manifest["heads"].items())
