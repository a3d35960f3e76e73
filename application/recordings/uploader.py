"""Upload finished recordings to object storage; the directory is the outbox.

The B2BUA worker writes ``<directory>/<YYYY-MM-DD>/<call id>.wav`` and stores
``Call.RecordingAvailable`` once the WAV is complete. Each round, for every file
there:

* the call has no RecordingAvailable yet: the recording is still being written
  (or its call not stored yet): wait;
* the call has ``RecordingStored`` already (a crash came after the event, before
  the file was removed): remove the file;
* otherwise: hash it, PUT it as ``<tenant>/<day>/<call id>.wav`` unless the bucket
  holds that key with that SHA-256 already (a crash came after the PUT), store
  ``Call.RecordingStored`` (bucket, key, size, sha256), then remove the file.

A file leaves the disk only after its event is stored, so nothing is lost when
storage or the database is down, and a restart (or a crash at any step) picks
the file up again: each step is idempotent. A failed file is retried with
exponential back-off (``backoff_base_s`` doubling up to ``backoff_max_s``),
the others are not held up by it.

A file written to within the last ``settle_s`` seconds is a call still being
recorded: it is not even looked up (no database read per recorded call and
round). One that has settled but whose call has no RecordingAvailable (a worker
that crashed mid-recording) is looked at again with the same back-off, quietly.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse
from uuid import UUID

from application.calls import CallService
from application.metrics import recordings_round
from application.recordings.storage import ObjectStore
from domain.call import CallNotFound

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20


class UploadOutcome(StrEnum):
    UPLOADED = "uploaded"
    REMOVED = "removed"  # stored before a crash: only the local copy was left
    WRITING = "writing"  # written to within settle_s: being recorded
    WAITING = "waiting"  # settled but not complete (no RecordingAvailable yet)
    FAILED = "failed"  # retried after back-off
    LATER = "later"  # in back-off


@dataclass
class _Backoff:
    failures: int = 0
    next_at: float = 0.0


@dataclass
class Round:
    """What one pass over the directory did, by outcome."""

    outcomes: dict[UploadOutcome, list[UUID]] = field(default_factory=dict)

    def add(self, outcome: UploadOutcome, call_id: UUID) -> None:
        self.outcomes.setdefault(outcome, []).append(call_id)

    def of(self, outcome: UploadOutcome) -> list[UUID]:
        return self.outcomes.get(outcome, [])

    @property
    def pending(self) -> int:
        """Files still on disk after the round (all but the uploaded and removed)."""
        return sum(len(ids) for outcome, ids in self.outcomes.items()
                   if outcome not in (UploadOutcome.UPLOADED, UploadOutcome.REMOVED))


def object_key(tenant: str, day: str, call_id: UUID) -> str:
    """``<tenant>/<YYYY-MM-DD>/<call id>.wav``: a tenant's objects share a prefix
    (per-tenant retention and listing), days sort."""
    return f"{tenant}/{day}/{call_id}.wav"


def call_of_key(key: str) -> tuple[str, UUID] | None:
    """(tenant, call id) of an object key this module made, else None."""
    parts = PurePosixPath(key).parts
    if len(parts) != 3 or not parts[2].endswith(".wav"):
        return None
    try:
        return parts[0], UUID(parts[2].removesuffix(".wav"))
    except ValueError:
        return None


def sha256_of(path: Path) -> tuple[str, int]:
    """The file's SHA-256 (hex) and size, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Uploader:
    def __init__(self, directory: Path, store: ObjectStore, calls: CallService, *,
                 backoff_base_s: float = 1.0, backoff_max_s: float = 300.0,
                 settle_s: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.store = store
        self.calls = calls
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.settle_s = settle_s
        self.clock = clock
        self.wall = wall
        self._backoff: dict[Path, _Backoff] = {}

    def run(self, stop: threading.Event, poll_s: float) -> None:
        """Rounds every ``poll_s`` until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(poll_s)

    def run_once(self) -> Round:
        done = Round()
        seen: set[Path] = set()
        for path, call_id in self._files():
            seen.add(path)
            done.add(self._visit(path, call_id), call_id)
        for gone in self._backoff.keys() - seen:  # removed by hand, or by another uploader
            del self._backoff[gone]
        recordings_round(done.pending, len(done.of(UploadOutcome.UPLOADED)),
                         len(done.of(UploadOutcome.FAILED)))
        return done

    def _visit(self, path: Path, call_id: UUID) -> UploadOutcome:
        try:
            if self.wall() - path.stat().st_mtime < self.settle_s:
                return UploadOutcome.WRITING
        except FileNotFoundError:
            return UploadOutcome.REMOVED
        state = self._backoff.get(path)
        if state is not None and self.clock() < state.next_at:
            return UploadOutcome.LATER
        return self._try(path, call_id)

    def _files(self) -> Iterator[tuple[Path, UUID]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*/*.wav")):
            try:
                yield path, UUID(path.stem)
            except ValueError:
                continue  # not a recording of ours

    def _try(self, path: Path, call_id: UUID) -> UploadOutcome:
        try:
            outcome = self._upload(path, call_id)
        except Exception as error:  # storage or database down, a file gone: retry later
            wait = self._later(path)
            # The error's class and message: endpoint and key, never a credential.
            log.warning("call %s: recording upload failed (%d in a row), retrying in %.0f s: "
                        "%s: %s", call_id, self._backoff[path].failures, wait,
                        type(error).__name__, error)
            return UploadOutcome.FAILED
        if outcome is UploadOutcome.WAITING:
            self._later(path)
        else:
            self._backoff.pop(path, None)
        return outcome

    def _upload(self, path: Path, call_id: UUID) -> UploadOutcome:
        try:
            call = self.calls.get_call(call_id)
        except CallNotFound:
            return UploadOutcome.WAITING
        if call.stored_recording is not None:
            path.unlink(missing_ok=True)
            return UploadOutcome.REMOVED
        if call.recording is None or PurePosixPath(urlparse(call.recording[0]).path).name \
                != path.name:
            return UploadOutcome.WAITING
        sha256, size = sha256_of(path)
        key = object_key(call.tenant, path.parent.name, call_id)
        if not self.store.holds(key, sha256):
            self.store.put(key, path, sha256)
        self.calls.store_recording(call_id, self.store.bucket, key, size, sha256,
                                   datetime.now(UTC))
        path.unlink(missing_ok=True)
        log.info("call %s: recording uploaded to %s/%s (%d bytes)", call_id, self.store.bucket,
                 key, size)
        return UploadOutcome.UPLOADED

    def _later(self, path: Path) -> float:
        """Back off ``path`` once more; the wait until its next try."""
        state = self._backoff.setdefault(path, _Backoff())
        state.failures += 1
        wait: float = min(self.backoff_base_s * 2.0 ** (state.failures - 1), self.backoff_max_s)
        state.next_at = self.clock() + wait
        return wait
