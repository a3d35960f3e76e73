"""GET /v1/calls/{id}/recording (issue 14 §5) on the platform's app, a real event
store, real projections and a real S3-compatible server: streamed to whoever may
read the call's history (history:read, or the agent who handled it), 404 to
anyone else and once retention deleted it, a presigned redirect where set so,
503 while storage is unreachable; every read audited (never its URL or key).
The retention test runs last: it deletes the module's recording."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from application.calls import CallService
from application.identity.model import Role
from application.recordings.retention import expire
from application.recordings.settings import RecordingSettings
from application.recordings.storage import ObjectStore
from application.recordings.uploader import Uploader, UploadOutcome
from dialtone.database import drop_database, ensure_database, eventsourcing_env, with_database
from dialtone.services.ports import free_port
from projections import calls
from streams.inprocess import InProcessProjectionRunner
from tests.fixtures.s3 import S3Server, s3_server
from tests.integration.api_support import api_key, platform_api
from tests.integration.recordings_support import recorded_call

__all__ = ["s3_server"]
PASSWORD = "a long enough password"
Headers = dict[str, str]


def bearer(credential: str) -> Headers:
    return {"Authorization": f"Bearer {credential}"}


@dataclass
class World:
    database_url: str
    client: TestClient
    service: CallService
    project: InProcessProjectionRunner
    store: ObjectStore
    call: UUID
    audio: bytes
    admin: Headers
    alice: Headers
    bob: Headers


def _agent_user(client: TestClient, admin: Headers, name: str) -> Headers:
    made = client.post("/v1/auth/users", headers=admin, json={
        "username": f"{name}-user", "role": "agent", "password": PASSWORD, "agent": name})
    assert made.status_code == 201, made.text
    token = client.post("/v1/auth/token", data={"username": f"{name}-user",
                                                 "password": PASSWORD})
    return bearer(token.json()["access_token"])


@pytest.fixture(scope="module")
def world(pg_admin_dsn: str, s3_server: S3Server,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One platform for the module's tests (they restore what they change)."""
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in s3_server.env(s3_server.new_bucket()).items():
                env.setenv(name, value)
            yield from _world(database_url, tmp_path_factory.mktemp("recordings"))
    finally:
        drop_database(database_url)


def _world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with platform_api(database_url) as client, \
            CallService(env=eventsourcing_env(database_url)) as service:
        admin = bearer(api_key(database_url, Role.ADMIN))
        for key in ("alice", "bob"):
            assert client.post("/v1/agents", json={"key": key, "name": key.title()},
                               headers=admin).status_code == 201
        call_id, path = recorded_call(service, tmp_path, 440, agent="alice")
        audio = path.read_bytes()
        store = ObjectStore.from_settings(RecordingSettings())
        assert Uploader(tmp_path, store, service).run_once().of(UploadOutcome.UPLOADED) == [call_id]
        project = InProcessProjectionRunner(service, database_url, [calls.GROUP])
        project.catch_up()
        yield World(database_url, client, service, project, store, call_id, audio, admin,
                    _agent_user(client, admin, "alice"), _agent_user(client, admin, "bob"))


def test_the_recording_streams_to_history_readers_and_its_agent_only(world: World) -> None:
    path = f"/v1/calls/{world.call}/recording"
    analyst = bearer(api_key(world.database_url, Role.ANALYST))
    for who in (world.admin, analyst, world.alice):
        got = world.client.get(path, headers=who)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "audio/wav"
        assert got.content == world.audio
    assert world.client.get(path, headers=world.bob).status_code == 404  # not bob's call
    assert world.client.get(path).status_code == 401
    assert world.client.get(f"/v1/calls/{UUID(int=7)}/recording",
                            headers=world.admin).status_code == 404


@contextmanager
def serving(world: World, store: ObjectStore, settings: RecordingSettings) -> Iterator[None]:
    """The app reads recordings from ``store`` with ``settings`` inside the block."""
    state = world.client.app.state  # type: ignore[attr-defined]
    before = getattr(state, "recordings", None)
    state.recordings = (store, settings)
    try:
        yield
    finally:
        state.recordings = before


def test_a_redirect_to_a_presigned_url_where_set_so(world: World) -> None:
    redirect = RecordingSettings(download="redirect", presign_expires_s=60)
    with serving(world, world.store, redirect):
        got = world.client.get(f"/v1/calls/{world.call}/recording", headers=world.admin,
                               follow_redirects=False)
    assert got.status_code == 307
    location = got.headers["location"]
    assert "X-Amz-Signature=" in location
    assert "X-Amz-Expires=60" in location
    with urllib.request.urlopen(location, timeout=20) as presigned:  # no credential sent
        assert presigned.read() == world.audio


def test_storage_unreachable_is_503(world: World) -> None:
    path = f"/v1/calls/{world.call}/recording"
    unreachable = RecordingSettings(s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
                                    s3_bucket=world.store.bucket)
    with serving(world, ObjectStore.from_settings(unreachable), unreachable):
        got = world.client.get(path, headers=world.admin)
    assert got.status_code == 503
    assert got.headers["retry-after"] == "5"
    assert world.client.get(path, headers=world.admin).status_code == 200


def _audit_of(world: World, request_id: str) -> dict[str, object]:
    """The audit row of the request that `request_id` (its X-Request-ID) names."""
    rows = world.client.get("/v1/audit", params={"aggregate": str(world.call)},
                            headers=world.admin).json()["data"]
    found = [row for row in rows if row["request_id"] == request_id]
    assert len(found) == 1, rows
    row: dict[str, object] = found[0]
    return row


def test_every_download_is_audited_without_its_url_or_key(world: World) -> None:
    """Who read which call's recording, as its stream or its presigned URL, is in
    the audit log; the URL (a credential until it expires) and the object's key are not."""
    path = f"/v1/calls/{world.call}/recording"
    streamed = world.client.get(path, headers=world.alice)
    assert streamed.status_code == 200
    row = _audit_of(world, streamed.headers["x-request-id"])
    assert (row["action"], row["outcome"], row["actor_kind"]) == ("recordings.read", "ok", "user")
    assert row["aggregate_id"] == str(world.call)
    assert row["detail"] == {"status": 200, "method": "GET", "call_id": str(world.call),
                             "delivery": "stream"}
    redirect = RecordingSettings(download="redirect", presign_expires_s=60)
    with serving(world, world.store, redirect):
        moved = world.client.get(path, headers=world.admin, follow_redirects=False)
    assert moved.status_code == 307
    row = _audit_of(world, moved.headers["x-request-id"])
    assert (row["action"], row["actor_kind"]) == ("recordings.read", "key")
    assert row["detail"] == {"status": 307, "method": "GET", "call_id": str(world.call),
                             "delivery": "redirect"}
    ref = _recording_ref(world.database_url, world.call)
    assert ref is not None
    written = str(row)
    for secret in (moved.headers["location"], "X-Amz-Signature", ref.split("/", 3)[-1]):
        assert secret not in written
    refused = world.client.get(path, headers=world.bob)  # not bob's call: 404, audited
    row = _audit_of(world, refused.headers["x-request-id"])
    assert (row["outcome"], row["detail"]["status"]) == ("refused", 404)  # type: ignore[index]


def test_retention_makes_it_404_and_the_deletion_is_in_the_timeline(
    world: World, tmp_path: Path,
) -> None:
    call_id, _ = recorded_call(world.service, tmp_path, 660, tenant="acme")
    Uploader(tmp_path, world.store, world.service).run_once()
    world.project.catch_up()
    # No acme user here: the CDR is what the API reads, so check the row
    later = datetime.now(UTC) + timedelta(days=2)
    keep_default = RecordingSettings(retention_by_tenant="acme=1")
    assert [k.split("/")[0] for k in expire(world.store, world.service, keep_default, later)] \
        == ["acme"]
    world.project.catch_up()
    path = f"/v1/calls/{world.call}/recording"
    assert world.client.get(path, headers=world.admin).status_code == 200  # default's kept
    assert _recording_ref(world.database_url, call_id) is None
    deleted = expire(world.store, world.service, RecordingSettings(retention_days=1), later)
    assert len(deleted) == 1
    world.project.catch_up()
    assert world.client.get(path, headers=world.admin).status_code == 404
    timeline = world.client.get(f"/v1/calls/{world.call}/timeline", headers=world.admin).json()
    assert timeline["events"][-1]["type"] == "dialtone.call.recording_deleted.v1"


def _recording_ref(database_url: str, call_id: UUID) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT recording_ref FROM cdr WHERE call_id = %s",
                           (call_id,)).fetchone()
    assert row is not None
    ref: str | None = row[0]
    return ref

