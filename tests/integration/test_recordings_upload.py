"""Recordings go to object storage after the call (issue 14 §5), against a real
S3-compatible server (moto's, tests/fixtures/s3.py) and the real event store.

Nothing is lost while storage is down: the file stays on disk until the upload
succeeds, then Call.RecordingStored is stored once and the file removed. A crash
after the PUT does not PUT again. Retention deletes old objects per tenant and
records each deletion."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from application.calls import CallService
from application.recordings.retention import expire
from application.recordings.settings import RecordingSettings
from application.recordings.storage import ObjectStore
from application.recordings.uploader import Uploader, UploadOutcome, object_key, sha256_of
from dialtone.database import eventsourcing_env
from domain.call import Call
from domain.values import Direction, Disposition, HangupSide
from tests.fixtures.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server
from tests.integration.recordings_support import recorded_call, write_wav

__all__ = ["s3_server"]


class Clock:
    """The uploader's monotonic clock, moved by the test (back-off without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def metric(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def stored_events(service: CallService, call_id: UUID) -> list[str]:
    return [type(e).__name__ for e in service.events.get(call_id)
            if isinstance(e, Call.RecordingStored | Call.RecordingDeleted)]


@pytest.fixture
def services(database_url: str) -> Iterator[tuple[CallService, CallService]]:
    """The B2BUA's call service and the uploader's own (another process's, reading
    what the first stored: fast-forward on)."""
    with CallService(env=eventsourcing_env(database_url)) as worker, \
            CallService(env=eventsourcing_env(database_url,
                                              AGGREGATE_CACHE_FASTFORWARD="y")) as uploader:
        yield worker, uploader


def store_for(server: S3Server, bucket: str) -> ObjectStore:
    return ObjectStore.from_settings(server.settings(bucket))


def test_storage_down_keeps_the_file_until_it_is_back_then_uploads_it_once(
    s3_server: S3Server, services: tuple[CallService, CallService], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    worker, calls = services
    bucket, clock = s3_server.new_bucket(), Clock()
    uploader = Uploader(tmp_path, store_for(s3_server, bucket), calls, backoff_base_s=2.0,
                        backoff_max_s=8.0, clock=clock)
    first, first_path = recorded_call(worker, tmp_path, 440)
    sha, size = sha256_of(first_path)
    assert uploader.run_once().of(UploadOutcome.UPLOADED) == [first]
    assert not first_path.exists()
    key = object_key("default", first_path.parent.name, first)
    assert calls.get_call(first).stored_recording == (bucket, key, size, sha)
    assert s3_server.versions(bucket, key) == 1

    s3_server.stop()  # storage goes down mid-run
    second, second_path = recorded_call(worker, tmp_path, 1000)
    failed_before = metric("dialtone_recording_uploads_total", outcome="failed")
    assert uploader.run_once().of(UploadOutcome.FAILED) == [second]
    assert second_path.exists()
    assert metric("dialtone_recordings_pending") == 1
    assert metric("dialtone_recording_uploads_total", outcome="failed") == failed_before + 1
    assert uploader.run_once().of(UploadOutcome.LATER) == [second]  # backing off
    clock.now += 2.0
    assert uploader.run_once().of(UploadOutcome.FAILED) == [second]  # still down: waits longer
    clock.now += 2.0
    assert uploader.run_once().of(UploadOutcome.LATER) == [second]
    assert second_path.exists()
    assert stored_events(calls, second) == []

    s3_server.start()  # back, empty: the harness makes the bucket again
    clock.now += 2.0
    second_sha, second_size = sha256_of(second_path)
    assert uploader.run_once().of(UploadOutcome.UPLOADED) == [second]
    assert uploader.run_once().outcomes == {}  # nothing left
    assert metric("dialtone_recordings_pending") == 0
    assert not second_path.exists()
    second_key = object_key("default", second_path.parent.name, second)
    assert s3_server.versions(bucket, second_key) == 1
    assert stored_events(calls, second) == ["RecordingStored"]
    got = s3_server.client().get_object(Bucket=bucket, Key=second_key)
    assert (got["ContentLength"], got["Metadata"]) == (second_size, {"sha256": second_sha})
    logged = caplog.text
    assert "recording upload failed" in logged
    assert SECRET_ACCESS_KEY not in logged
    assert ACCESS_KEY_ID not in logged


def test_a_restart_after_a_crash_neither_puts_twice_nor_stores_twice(
    s3_server: S3Server, services: tuple[CallService, CallService], tmp_path: Path,
) -> None:
    worker, calls = services
    bucket = s3_server.new_bucket()
    store = store_for(s3_server, bucket)
    put_only, put_path = recorded_call(worker, tmp_path, 440)
    stored, stored_path = recorded_call(worker, tmp_path, 660)
    put_key = object_key("default", put_path.parent.name, put_only)
    # Crashed after the PUT, before the event:
    store.put(put_key, put_path, sha256_of(put_path)[0])
    # Crashed after the event, before the file was removed:
    Uploader(tmp_path, store, calls).run_once()
    stored_path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(stored_path, 660)

    restarted = Uploader(tmp_path, store, calls).run_once()
    assert restarted.of(UploadOutcome.REMOVED) == [stored]
    assert not put_path.exists()
    assert not stored_path.exists()
    assert s3_server.versions(bucket, put_key) == 1
    assert stored_events(calls, put_only) == stored_events(calls, stored) == ["RecordingStored"]


def test_a_recording_still_being_written_waits_and_goes_once_complete(
    s3_server: S3Server, services: tuple[CallService, CallService], tmp_path: Path,
) -> None:
    worker, calls = services
    bucket, clock, wall = s3_server.new_bucket(), Clock(), Clock()
    call_id = worker.initiate_call(caller="1", callee="2", trunk=None, sip_call_id=f"{uuid4()}",
                                   direction=Direction.INBOUND, occurred_at=datetime.now(UTC))
    partial = tmp_path / "2026-01-01" / f"{call_id}.wav"
    write_wav(partial, 300)  # no RecordingAvailable yet: the worker is still writing it
    unknown = tmp_path / "2026-01-01" / f"{uuid4()}.wav"  # its call not stored yet
    write_wav(unknown, 300)
    uploader = Uploader(tmp_path, store_for(s3_server, bucket), calls, settle_s=5.0,
                        backoff_base_s=2.0, clock=clock, wall=wall)
    wall.now = partial.stat().st_mtime + 1.0  # written a second ago: being recorded
    assert sorted(uploader.run_once().of(UploadOutcome.WRITING)) == sorted(
        [call_id, UUID(unknown.stem)])
    wall.now += 10.0  # settled, but neither is complete
    assert sorted(uploader.run_once().of(UploadOutcome.WAITING)) == sorted(
        [call_id, UUID(unknown.stem)])
    assert sorted(uploader.run_once().of(UploadOutcome.LATER)) == sorted(
        [call_id, UUID(unknown.stem)])
    assert partial.exists()
    assert unknown.exists()
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=bucket)

    worker.answer_call(call_id, datetime.now(UTC))
    worker.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                    hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=datetime.now(UTC))
    worker.attach_recording(call_id, partial.resolve().as_uri(), 0.4, datetime.now(UTC))
    clock.now += 2.0
    done = uploader.run_once()
    assert done.of(UploadOutcome.UPLOADED) == [call_id]
    assert done.of(UploadOutcome.WAITING) == [UUID(unknown.stem)]
    assert not partial.exists()


def test_retention_deletes_old_objects_per_tenant_and_records_each_deletion(
    s3_server: S3Server, services: tuple[CallService, CallService], tmp_path: Path,
) -> None:
    worker, calls = services
    bucket = s3_server.new_bucket()
    store = store_for(s3_server, bucket)
    kept_long, _ = recorded_call(worker, tmp_path, 440)
    short, _ = recorded_call(worker, tmp_path, 660, tenant="acme")
    Uploader(tmp_path, store, calls).run_once()
    settings = RecordingSettings(retention_days=30, retention_by_tenant="acme=2")
    now = datetime.now(UTC)

    assert expire(store, calls, settings, now + timedelta(days=1)) == []
    in_three_days = expire(store, calls, settings, now + timedelta(days=3))
    assert [k.split("/")[0] for k in in_three_days] == ["acme"]
    assert stored_events(calls, short) == ["RecordingStored", "RecordingDeleted"]
    assert calls.get_call(short).stored_recording is None
    assert expire(store, calls, settings, now + timedelta(days=3)) == []  # recorded once
    assert stored_events(calls, kept_long) == ["RecordingStored"]
    assert len(expire(store, calls, settings, now + timedelta(days=31))) == 1
    assert stored_events(calls, kept_long) == ["RecordingStored", "RecordingDeleted"]
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=bucket)
    assert expire(store, calls, RecordingSettings(), now + timedelta(days=3650)) == []


def test_retention_by_tenant_names_a_bad_entry() -> None:
    with pytest.raises(ValueError, match="acme"):
        RecordingSettings(retention_by_tenant="acme=soon").tenant_retention()
