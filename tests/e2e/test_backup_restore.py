"""`dialtone backup` of a store filled by real SIP calls, `dialtone restore` into another
database: every projection rebuilt there equals the original, row for row, and the
state beside the events (identities, SIP credentials, webhook subscriptions with
their queue and their followers' positions) comes back as it was."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import wave
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from application.identity import sip_credentials
from application.identity.credentials import verify_password
from application.registrations import Held, RegistrationService
from dialtone import bootstrap, composition
from dialtone.commands.users import ensure_initial_admin, issue_api_key, with_connection
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from streams.webhooks import StoreFollower
from tests.fixtures.callcentre import provision_queue
from tests.fixtures.processes import DIALTONE
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, route_to
from tests.integration.webhook_support import subscribe

pytestmark = pytest.mark.sip

ANSWERED, UNROUTED = 24, 6
# Not projections: backed up (events, identities), or bookkeeping of running
# processes that a restored platform starts afresh.
NOT_PROJECTIONS = {"callservice_events", "callcentreservice_events", "tenants", "users",
                   "service_accounts", "api_keys", "refresh_tokens", "login_failures",
                   "auth_signing_key", "audit_log", "_yoyo_log", "_yoyo_migration",
                   "_yoyo_version", "yoyo_lock", "relay_positions", "service_heartbeats",
                   "sip_worker_calls"}
# When a row was written, not what it says: projected_at (call_events,
# callcentre_events), updated_at (call_live, agent_state, queue_live,
# projection_positions), since (call_projection_gaps).
WALL_CLOCK = {"projected_at", "updated_at", "since"}


def _dialtone(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DIALTONE), *args], env={**os.environ, "DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=300, check=False)


def _projection_tables(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return [t for t in tables if t not in NOT_PROJECTIONS]


def _snapshot(database_url: str, tables: list[str]) -> dict[str, Counter[str]]:
    """Each table's rows (wall-clock columns left out) as a multiset: order-independent."""
    snapshot: dict[str, Counter[str]] = {}
    with psycopg.connect(database_url) as conn:
        for table in tables:
            columns = [row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position", (table,)) if row[0] not in WALL_CLOCK]
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table))
            snapshot[table] = Counter(json.dumps(dict(zip(columns, row, strict=True)),
                                                 default=str, sort_keys=True)
                                      for row in conn.execute(query))
    return snapshot


def _fill_with_calls(sipp: Sipp, b2bua: StartWorker, call_store: CallStore) -> None:
    uas_port = free_udp_port()
    # Two slots, one call at a time (-l 1): every call is admitted, none is a 503.
    worker = b2bua(route_to(uas_port), args=["--max-calls", "2"])
    uas = sipp.uas("uas", uas_port, calls=ANSWERED)
    answered = sipp.uac("uac", worker.port, service="1000", calls=ANSWERED, rate=8,
                        extra=["-d", "100", "-l", "1"], timeout=90)
    assert answered.ok, answered.errors
    assert sipp.wait_uas(uas) == 0
    unrouted = sipp.uac(sipp.expect_status(404), worker.port, service="999", calls=UNROUTED,
                        rate=8, extra=["-l", "1"], timeout=60)
    assert unrouted.ok, unrouted.errors
    call_store.wait_ended(ANSWERED + UNROUTED, timeout=60)


def _attach_recordings(call_store: CallStore, directory: Path) -> tuple[Path, str]:
    """A real WAV on one call, and a reference to a file this host cannot read on another."""
    wav = directory / "recording.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * 125)  # 2 s
    first, second = list(call_store.histories())[:2]
    now = datetime.now(UTC)
    call_store.service.attach_recording(first, wav.resolve().as_uri(), 2.0, now)
    gone = "file:///nowhere/recordings/gone.wav"
    call_store.service.attach_recording(second, gone, 3.0, now)
    return wav, gone


SIP_PASSWORD = "a device's own secret"


def _state_beside_events(database_url: str) -> None:
    """An integration's API key, a SIP device's credentials and a webhook subscription,
    its deliveries queued by the embedded followers (their positions recorded): state,
    not events. And the device's registration: events, in a store nothing relays."""
    issue_api_key(database_url, "crm")  # api_keys references service_accounts

    async def provision(conn: Any) -> None:
        await sip_credentials.set_sip_domain(conn, "default", "pbx.example.com")
        await sip_credentials.create_credential(conn, "default", "1001", SIP_PASSWORD)
    with_connection(database_url, provision)
    now = datetime.now(UTC)
    with RegistrationService(env=eventsourcing_env(database_url)) as registrations:
        assert registrations.record([Held("default", "sip:1001@pbx.example.com",
                                          "sip:1001@192.0.2.7:5060", "desk phone",
                                          now + timedelta(hours=1))], now) == 2  # made, bound
    subscribe(database_url, "https://crm.example.com/hook",
              "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    apps = composition.event_sources(database_url)
    try:
        for app in apps:
            StoreFollower(app, database_url).catch_up()
    finally:
        for app in apps:
            app.close()


def _row_count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                           ).fetchone()
    return int(row[0]) if row else 0


def _check_private(backup_dir: Path, password: str) -> None:
    """0700/0600: it holds password hashes and the token signing key; no plain password."""
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    files = sorted(backup_dir.iterdir())
    assert [f.name for f in files] == ["manifest.json", "store.dump"]
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert password.encode() not in file.read_bytes()
        assert SIP_PASSWORD.encode() not in file.read_bytes()  # its digest hashes only


def _check_manifest(backup_dir: Path, database_url: str, wav: Path, gone: str
                    ) -> dict[str, Any]:
    """Heads equal to the store's, the recordings with their size and sha256 when reachable."""
    manifest: dict[str, Any] = json.loads((backup_dir / "manifest.json").read_text())
    with psycopg.connect(database_url) as conn:
        heads = {name: conn.execute(sql.SQL("SELECT max(notification_id) FROM {}").format(
            sql.Identifier(table))).fetchone() for name, table in
            (("CallService", "callservice_events"),
             ("CallCentreService", "callcentreservice_events"))}
    assert manifest["heads"] == {name: row[0] for name, row in heads.items() if row}
    assert [m["id"] for m in manifest["migrations"]][:2] == ["0001_call_projections",
                                                             "0002_callcentre_projections"]
    recordings = {r["ref"]: r for r in manifest["recordings"]}
    assert len(recordings) == 2
    reachable = recordings[wav.resolve().as_uri()]
    assert reachable["sha256"] == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert (reachable["size"], reachable["reachable"]) == (wav.stat().st_size, True)
    assert (recordings[gone]["reachable"], recordings[gone]["size"],
            recordings[gone]["sha256"], recordings[gone]["duration_s"]) == (False, None, None, 3.0)
    return manifest


def test_backup_restored_elsewhere_rebuilds_every_projection_row_for_row(
    database_url: str, second_database: str, tmp_path: Path,
    sipp: Sipp, b2bua: StartWorker, call_store: CallStore,
) -> None:
    apply_migrations(database_url)
    password = ensure_initial_admin(database_url, tmp_path / "data")
    assert password
    centre = bootstrap.callcentre_service(database_url)
    provision_queue(centre, "sales", ["alice", "bob"], did="5000")
    _fill_with_calls(sipp, b2bua, call_store)
    wav, gone = _attach_recordings(call_store, tmp_path)
    for runner in bootstrap.inprocess_runners(database_url):
        runner.catch_up()
    _state_beside_events(database_url)
    tables = _projection_tables(database_url)
    original = _snapshot(database_url, tables)
    assert (len(original["sip_subscribers"]), len(original["webhook_subscriptions"])) == (1, 1)
    assert len(original["webhook_deliveries"]) > ANSWERED  # every event so far, queued
    assert sum('"projection": "webhooks"' in row for row in original["projection_positions"]) == 2
    assert len(original["cdr"]) == ANSWERED + UNROUTED
    assert len(original["agent_state"]) == 2
    assert len(original["queue_members"]) == 2

    backup_dir = tmp_path / "backup"
    backed = _dialtone(database_url, "backup", "--output", str(backup_dir))
    assert backed.returncode == 0, backed.stderr

    _check_private(backup_dir, password)
    manifest = _check_manifest(backup_dir, database_url, wav, gone)

    restored = _dialtone(second_database, "restore", str(backup_dir))

    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout
    assert _projection_tables(second_database) == tables
    rebuilt = _snapshot(second_database, tables)
    for table in tables:
        assert rebuilt[table] == original[table], (
            table, "only rebuilt:", rebuilt[table] - original[table],
            "only original:", original[table] - rebuilt[table])
    with psycopg.connect(second_database) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE username = 'admin'"
                           ).fetchone()
        keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()
    assert keys == (1,)
    assert row is not None
    assert verify_password(row[0], password)
    # The store carries on where the backup stopped: no position is reused.
    restored_calls = bootstrap.call_service(second_database)
    head = manifest["heads"]["CallService"]
    restored_calls.attach_recording(next(iter(call_store.histories())), "file:///r.wav", 1.0,
                                    datetime.now(UTC))
    assert restored_calls.recorder.max_notification_id() == head + 1

    (registrations,) = manifest["kept_event_tables"]["Registrations"]
    assert _row_count(second_database, registrations) == _row_count(database_url,
                                                                     registrations) == 2

    again = _dialtone(second_database, "restore", str(backup_dir))
    assert again.returncode != 0
    assert "is not empty" in again.stderr
