"""The backup manifest says where each recording is once it went to object storage
(issue 14 §5): the stored object's bucket, key, size and sha256, or null after
retention deleted it (the local file is gone after an upload, so `reachable` alone
would read as lost)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from application.calls import CallService
from dialtone.commands.backup import backup
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from tests.integration.recordings_support import recorded_call

SHA = "ab" * 32


def test_the_manifest_lists_each_recordings_object_until_retention_deletes_it(
    database_url: str, tmp_path: Path,
) -> None:
    apply_migrations(database_url)
    with CallService(env=eventsourcing_env(database_url)) as calls:
        stored, stored_path = recorded_call(calls, tmp_path / "rec", 440)
        now = datetime.now(UTC)
        calls.store_recording(stored, "recordings", "default/d/s.wav", 6444, SHA, now)
        stored_path.unlink()  # as the uploader does
        deleted, _ = recorded_call(calls, tmp_path / "rec", 660)
        now = datetime.now(UTC)
        calls.store_recording(deleted, "recordings", "default/d/x.wav", 10, SHA, now)
        calls.delete_recording(deleted, "recordings", "default/d/x.wav", "retention", now)
        local, _ = recorded_call(calls, tmp_path / "rec", 880)

    manifest = backup(database_url, tmp_path / "backup")
    by_call = {r["call_id"]: r for r in manifest["recordings"]}
    assert by_call[str(stored)]["object"] == {"bucket": "recordings", "key": "default/d/s.wav",
                                              "size_bytes": 6444, "sha256": SHA}
    assert by_call[str(stored)]["reachable"] is False
    assert by_call[str(deleted)]["object"] is None
    assert by_call[str(local)]["object"] is None
    assert by_call[str(local)]["reachable"] is True
