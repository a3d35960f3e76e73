"""``dialtone recordings``: upload finished call recordings to object storage, and
apply the retention setting (docs/recordings.md).

A process of its own, beside the B2BUA workers on the host (or volume) where they
write recordings: boto3 (a second of CPU to import, tens of MB) and the uploads'
hashing and network waits stay off the call path and out of every worker's
memory, and it restarts on its own. What a crash interrupts is picked up at the
next start from the directory (application/recordings/uploader.py). `dialtone up`
runs the same loop in a thread (``embedded``) when the S3 settings are given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from application.calls import CallService
from application.heartbeats import Heartbeat, host_instance
from application.recordings.retention import expire
from application.recordings.settings import RecordingSettings
from application.recordings.storage import ObjectStore
from application.recordings.uploader import Round, Uploader, UploadOutcome
from dialtone.database import eventsourcing_env, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.services.metrics import start_metrics_server
from dialtone.services.signals import StopSignals
from dialtone.settings import Settings

log = logging.getLogger(__name__)
HEARTBEAT_SERVICE = "recordings"  # its service_heartbeats row (docs/health.md)


def call_service(database_url: str) -> CallService:
    """Its own CallService: another writer than the workers, so the cache reads each
    call's newer events before a command (fast-forward)."""
    return CallService(env=eventsourcing_env(database_url, AGGREGATE_CACHE_FASTFORWARD="y",
                                             AGGREGATE_CACHE_MAXSIZE="1000"))


class RecordingsLoop:
    """Upload rounds every ``poll_s``, a retention pass every ``retention_every_s``."""

    def __init__(self, config: RecordingSettings, directory: Path, store: ObjectStore,
                 calls: CallService) -> None:
        config.tenant_retention()  # a bad RETENTION_BY_TENANT fails at start, not later
        self.config = config
        self.store = store
        self.calls = calls
        self.uploader = Uploader(directory, store, calls, backoff_base_s=config.backoff_base_s,
                                 backoff_max_s=config.backoff_max_s, settle_s=config.settle_s)
        self._next_retention = 0.0

    def once(self) -> Round:
        done = self.uploader.run_once()
        if time.monotonic() >= self._next_retention:
            self._retention()
            self._next_retention = time.monotonic() + self.config.retention_every_s
        return done

    def run(self, stop: threading.Event, beat: Callable[[], object] = lambda: None) -> None:
        """Rounds until ``stop``; ``beat`` after each (its heartbeat's tick)."""
        while not stop.is_set():
            self.once()
            beat()
            stop.wait(self.config.poll_s)

    def _retention(self) -> None:
        try:
            expire(self.store, self.calls, self.config, datetime.now(UTC))
        except Exception as error:  # storage or database down: the next pass tries again
            log.warning("recording retention failed, retrying in %.0f s: %s: %s",
                        self.config.retention_every_s, type(error).__name__, error)


class EmbeddedRecordings:
    """The loop in a thread of `dialtone up`, on its own CallService."""

    def __init__(self, database_url: str, settings: Settings) -> None:
        config = RecordingSettings()
        self.calls = call_service(database_url)
        self.loop = RecordingsLoop(config, config.directory or settings.data_dir / "recordings",
                                   ObjectStore.from_settings(config), self.calls)
        self.heartbeat = Heartbeat(database_url, HEARTBEAT_SERVICE, host_instance())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.loop.run,
                                        args=(self._stop, self.heartbeat.tick),
                                        name="recordings", daemon=True)

    def start(self) -> None:
        self.heartbeat.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        clean = self._thread.is_alive()  # one that ended by itself died of an error
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.heartbeat.stop(clean=clean)
        self.calls.close()


def embedded(database_url: str, settings: Settings) -> EmbeddedRecordings:
    return EmbeddedRecordings(database_url, settings)


@click.command("recordings")
@click.option("--once", is_flag=True,
              help="One upload round and one retention pass, then exit (cron, checks).")
@click.option("--create-bucket", is_flag=True,
              help="Create the bucket if it is missing (development; production provisions it).")
@click.pass_obj
def command(settings: Settings, once: bool, create_bucket: bool) -> None:
    """Upload recordings to S3-compatible storage and apply retention until Ctrl-C or SIGTERM."""
    config = RecordingSettings()
    directory = config.directory or settings.data_dir / "recordings"
    database_url = resolve_dsn(settings)
    apply_migrations(database_url)
    start_metrics_server(settings)  # dialtone_recordings_pending, ..._uploads_total
    store = ObjectStore.from_settings(config)
    if create_bucket:
        store.ensure_bucket()
    stop = StopSignals().install()
    with call_service(database_url) as calls:
        loop = RecordingsLoop(config, directory, store, calls)
        click.echo(f"dialtone recordings: {directory} -> bucket {store.bucket}")
        if not once:
            _run_beating(loop, stop, Heartbeat(database_url, HEARTBEAT_SERVICE, host_instance()))
            return
        done = loop.once()
        click.echo(f"uploaded {len(done.of(UploadOutcome.UPLOADED))}, "
                   f"waiting {len(done.of(UploadOutcome.WAITING))}, "
                   f"failed {len(done.of(UploadOutcome.FAILED))}")


def _run_beating(loop: RecordingsLoop, stop: StopSignals, heartbeat: Heartbeat) -> None:
    """The loop until a stop signal, with its heartbeat row: marked stopped on a clean
    stop, left to go stale when the loop dies of an error."""
    heartbeat.start()
    clean = False
    try:
        loop.run(stop.requested, heartbeat.tick)
        clean = True
    finally:
        heartbeat.stop(clean=clean)
