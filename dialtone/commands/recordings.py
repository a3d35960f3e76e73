"""``dialtone recordings``: upload finished call recordings to object storage, and
apply the retention setting (docs/recordings.md).

A process of its own, beside the B2BUA workers on the host (or volume) where they
write recordings: boto3 (a second of CPU to import, tens of MB) and the uploads'
hashing and network waits stay off the call path and out of every worker's
memory, and it restarts on its own. What a crash interrupts is picked up at the
next start from the directory (application/recordings/uploader.py).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import click

from application.calls import CallService
from application.recordings.retention import expire
from application.recordings.settings import RecordingSettings
from application.recordings.storage import ObjectStore
from application.recordings.uploader import Outcome, Uploader
from dialtone.database import eventsourcing_env, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services.signals import StopSignals
from dialtone.settings import Settings

log = logging.getLogger(__name__)


def call_service(database_url: str) -> CallService:
    """Its own CallService: another writer than the workers, so the cache reads each
    call's newer events before a command (fast-forward)."""
    return CallService(env=eventsourcing_env(database_url, AGGREGATE_CACHE_FASTFORWARD="y",
                                             AGGREGATE_CACHE_MAXSIZE="1000"))


@click.command("recordings")
@click.option("--once", is_flag=True,
              help="One upload round and one retention pass, then exit (cron, checks).")
@click.option("--create-bucket", is_flag=True,
              help="Create the bucket if it is missing (development; production provisions it).")
@click.pass_obj
def command(settings: Settings, once: bool, create_bucket: bool) -> None:
    """Upload recordings to S3-compatible storage and apply retention until Ctrl-C or SIGTERM."""
    config = RecordingSettings()
    config.tenant_retention()  # a bad DIALTONE_RECORDINGS_RETENTION_BY_TENANT fails at start
    directory = config.directory or settings.data_dir / "recordings"
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    store = ObjectStore.from_settings(config)
    if create_bucket:
        store.ensure_bucket()
    stop = StopSignals().install()
    with call_service(database_url) as calls:
        uploader = Uploader(directory, store, calls, backoff_base_s=config.backoff_base_s,
                            backoff_max_s=config.backoff_max_s)
        click.echo(f"dialtone recordings: {directory} -> bucket {store.bucket}")
        next_retention = 0.0
        while not stop.requested.is_set():
            done = uploader.run_once()
            if time.monotonic() >= next_retention:
                _retention(store, calls, config)
                next_retention = time.monotonic() + config.retention_every_s
            if once:
                click.echo(f"uploaded {len(done.of(Outcome.UPLOADED))}, waiting "
                           f"{len(done.of(Outcome.WAITING))}, failed "
                           f"{len(done.of(Outcome.FAILED))}")
                return
            stop.requested.wait(config.poll_s)


def _retention(store: ObjectStore, calls: CallService, config: RecordingSettings) -> None:
    try:
        expire(store, calls, config, datetime.now(UTC))
    except Exception as error:  # storage or database down: the next pass tries again
        log.warning("recording retention failed, retrying in %.0f s: %s: %s",
                    config.retention_every_s, type(error).__name__, error)
