"""`dialtone recordings`, the real process (issue 14 §5): it uploads what the B2BUA
left on disk, and after a crash (SIGKILL) the next start uploads the file left
behind; its log, at DEBUG, holds neither S3 key."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

from application.calls import CallService
from dialtone.database import eventsourcing_env
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server
from tests.integration.recordings_support import recorded_call

__all__ = ["s3_server"]


def test_the_process_uploads_resumes_after_a_crash_and_logs_no_key(
    database_url: str, s3_server: S3Server, tmp_path: Path,
) -> None:
    bucket = s3_server.new_bucket()
    recordings = tmp_path / "recordings"
    env = {**os.environ, **s3_server.env(bucket), "DATABASE_URL": database_url,
           "DIALTONE_RECORDINGS_DIRECTORY": str(recordings),
           "DIALTONE_RECORDINGS_POLL_S": "0.2", "DIALTONE_RECORDINGS_SETTLE_S": "0.5",
           "DIALTONE_RECORDINGS_RETENTION_DAYS": "30"}
    log = tmp_path / "recordings.log"
    args = ["--log-level", "DEBUG", "recordings"]
    with CallService(env=eventsourcing_env(database_url)) as worker, \
            CallService(env=eventsourcing_env(database_url,
                                              AGGREGATE_CACHE_FASTFORWARD="y")) as reader:
        def stored(call_id: UUID) -> bool:
            return reader.get_call(call_id).stored_recording is not None

        first, first_path = recorded_call(worker, recordings, 440)
        process = DialtoneProcess(args, env, log).start()
        try:
            wait_for(lambda: stored(first), 90, "the first upload", processes=(process,))
            wait_for(lambda: not first_path.exists(), 30, "the local copy removed",
                     processes=(process,))
            process.kill()  # a crash: the next file is left on disk
            second, second_path = recorded_call(worker, recordings, 660)
            assert second_path.exists()
            process = DialtoneProcess(args, env, log).start()
            wait_for(lambda: stored(second), 90, "the upload after the restart",
                     processes=(process,))
            wait_for(lambda: not second_path.exists(), 30, "the local copy removed",
                     processes=(process,))
        finally:
            process.stop()
        uploaded = reader.get_call(second).stored_recording
    assert uploaded is not None
    assert s3_server.versions(bucket, uploaded.key) == 1
    written = log.read_text(errors="replace")
    assert "recording uploaded" in written
    assert SECRET_ACCESS_KEY not in written
    assert ACCESS_KEY_ID not in written
