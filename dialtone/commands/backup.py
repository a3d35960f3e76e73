"""``dialtone backup``: the event store and the state beside it, with a manifest.

What is backed up is what cannot be derived: each application's stored events
(the notification log is the same table), the identities and credentials
(tenants, users, keys, tokens, the audit log, the SIP devices' credentials:
state, not events), the webhook subscriptions with their delivery queue and log
and, in the manifest, yoyo's migration log and how far the webhook followers had
queued. Projections, their positions, dead letters, heartbeats and relay positions
are not: `dialtone restore` rebuilds the projections from the events, puts the
webhook followers back where they were, and the relay finds its place from Kafka.

The backup is a directory (mode 0700, files 0600: it holds password hashes, the
token signing key, the SIP digest hashes and the webhook secrets) with
``store.dump`` (pg_dump custom format) and ``manifest.json``. The manifest is read
in the very snapshot pg_dump dumps (pg_export_snapshot), so its head positions
and webhook positions are exactly the archive's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click
import psycopg
from eventsourcing.application import Application
from eventsourcing.utils import get_topic
from psycopg import sql

from application.follow import pages
from dialtone import composition
from dialtone.database import resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services import pg_tools
from dialtone.settings import Settings
from domain.call import Call
from streams.webhooks import POSITION_NAME as WEBHOOKS_POSITION

FORMAT = 1
ARCHIVE = "store.dump"
MANIFEST = "manifest.json"
# State that is not derived from events: the identities (migrations/schema/0005,
# tenants with their SIP domain), the SIP devices' digest credentials (0020: never
# events), and the webhooks (0011): the subscriptions with their secrets, and the
# delivery queue and log with the tenants the follower learnt, which go with its
# position (the manifest's webhook_positions) so that a restored platform neither re-sends the
# history nor skips what was queued.
STATE_TABLES = ("tenants", "users", "service_accounts", "api_keys", "refresh_tokens",
                "login_failures", "auth_signing_key", "audit_log", "sip_subscribers",
                "webhook_subscriptions", "webhook_aggregates", "webhook_deliveries",
                "webhook_attempts")
_RECORDING_TOPIC = get_topic(Call.RecordingAvailable)
_OBJECT_TOPICS = [get_topic(Call.RecordingStored), get_topic(Call.RecordingDeleted)]
_PAGE = 10_000


def event_tables(app: Application[Any]) -> list[str]:
    """The tables an application's events (and snapshots, if it takes any) live in."""
    tables = [app.recorder.events_table_name]  # type: ignore[attr-defined]
    if app.snapshots is not None:
        tables.append(app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
    return tables


@click.command("backup")
@click.option("--output", type=click.Path(path_type=Path),
              help="New directory for the backup (default: "
                   "DIALTONE_DATA_DIR/backups/dialtone-<UTC time>).")
@click.pass_obj
def command(settings: Settings, output: Path | None) -> None:
    """Back up the event store, identities and the recordings' manifest."""
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    target = output or settings.data_dir / "backups" / (
        "dialtone-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    started = time.monotonic()
    manifest = backup(database_url, target)
    size = sum(f.stat().st_size for f in target.iterdir())
    heads = ", ".join(f"{name} {head}" for name, head in manifest["heads"].items())
    click.echo(f"backup {target}: {size} bytes in {time.monotonic() - started:.1f}s; "
               f"heads {heads}; {len(manifest['recordings'])} recording(s)")


def backup(database_url: str, target: Path) -> dict[str, Any]:
    """Write ``store.dump`` and ``manifest.json`` into the new directory ``target``."""
    apps = composition.event_sources(database_url)
    kept = composition.kept_stores(database_url)
    try:
        tables = {app.name: event_tables(app) for app in apps}
        kept_tables = {app.name: event_tables(app) for app in kept}
        all_tables = [t for names in (*tables.values(), *kept_tables.values()) for t in names]
        all_tables += list(STATE_TABLES)
        _private_directory(target)
        with _exported_snapshot(database_url) as (conn, snapshot):
            heads = {app.name: _head(conn, tables[app.name][0]) for app in apps}
            webhook_positions = _webhook_positions(conn)
            migrations = [{"id": row[0], "applied_at_utc": row[1].isoformat()} for row in
                          conn.execute("SELECT migration_id, applied_at_utc"
                                       " FROM _yoyo_migration ORDER BY applied_at_utc")]
            with _private_umask():
                pg_tools.dump(database_url, all_tables, target / ARCHIVE, snapshot=snapshot)
        manifest = {
            "format": FORMAT,
            "dialtone_version": version("dialtone"),
            "created_at": datetime.now(UTC).isoformat(),
            "heads": heads,
            "webhook_positions": webhook_positions,
            "event_tables": tables,
            # Stores that are not relayed (no head to place a follower at): data only.
            "kept_event_tables": kept_tables,
            "tables": all_tables,
            "migrations": migrations,
            # Events are immutable and committed in position order, so reading up to
            # the heads outside the snapshot sees the same recordings.
            "recordings": [r for app in apps for r in _recordings(app, heads[app.name])],
        }
        with _private_umask():
            (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for path in target.iterdir():
            path.chmod(0o600)
        return manifest
    finally:
        for app in (*apps, *kept):
            app.close()


def _private_directory(target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise click.ClickException(f"{target} exists and is not empty: choose a new directory")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)


@contextmanager
def _private_umask() -> Iterator[None]:
    """Files are created 0600 from the start (not chmod-ed after being readable)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def _exported_snapshot(database_url: str) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A read-only repeatable-read transaction kept open while pg_dump uses its snapshot."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        yield conn, str(row[0])
        conn.rollback()


def _webhook_positions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How far the embedded webhook followers had queued, by source, in the snapshot."""
    return {row[0]: int(row[1]) for row in conn.execute(
        "SELECT source, position FROM projection_positions WHERE projection = %s",
        (WEBHOOKS_POSITION,))}


def _head(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
        sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _recordings(app: Application[Any], head: int) -> Iterator[dict[str, Any]]:
    """Every RecordingAvailable up to ``head``, with the file's size and sha256 if reachable,
    and the object storage copy the call has at ``head`` (``object``; null: none, not
    uploaded yet or deleted by retention)."""
    objects = _objects(app, head)
    for page in pages(app.recorder, page_size=_PAGE, topics=[_RECORDING_TOPIC], until=head):
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            assert isinstance(event, Call.RecordingAvailable)
            yield {"call_id": str(event.originator_id), "position": notification.id,
                   "ref": event.ref, "duration_s": event.duration_s, **_file_facts(event.ref),
                   "object": objects.get(event.originator_id)}


def _objects(app: Application[Any], head: int) -> dict[Any, dict[str, Any] | None]:
    """Call id -> its stored recording's bucket, key, size and sha256 at ``head``."""
    found: dict[Any, dict[str, Any] | None] = {}
    for page in pages(app.recorder, page_size=_PAGE, topics=_OBJECT_TOPICS, until=head):
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            found[event.originator_id] = (
                {"bucket": event.bucket, "key": event.key, "size_bytes": event.size_bytes,
                 "sha256": event.sha256} if isinstance(event, Call.RecordingStored) else None)
    return found


def _file_facts(ref: str) -> dict[str, Any]:
    """Size and sha256 of a file:// recording this host can read; nulls otherwise."""
    url = urlparse(ref)
    path = Path(unquote(url.path)) if url.scheme in ("file", "") else None
    if path is None or not path.is_file():
        return {"reachable": False, "size": None, "sha256": None}
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"reachable": True, "size": path.stat().st_size, "sha256": digest.hexdigest()}
