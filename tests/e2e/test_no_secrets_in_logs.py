"""No password, token, key or hash in the logs of a real `dialtone up` (issue 9).

One `dialtone up` (embedded PostgreSQL, one B2BUA worker) is driven through
every credential path: the printed admin password logs in, its refresh token
is used, an API key and a user with a password are made, both authenticate
requests, a wrong password, a tampered token and a revoked-looking key are
refused, a SIP device is provisioned with a password, a webhook is subscribed
(its signed deliveries attempted and failing), and one real SIP call (sipp)
goes through the worker. Then dialtone
is stopped and every log it wrote is read back:

* the capture of its stdout/stderr (what a terminal or journald would keep),
* every file under `<data_dir>/logs` (the B2BUA workers' logs),
* the embedded PostgreSQL's log (`<data_dir>/postgres.log`),

and none may contain any of the secrets: the passwords, the access and
refresh tokens (whole, and their signature / secret parts alone), the API key
(whole, and its secret part alone), the argon2 hashes of the passwords, the SIP
device's password and its digest hashes (ha1, ha1b), the webhook's secret, and the
S3 keys of the recordings' storage (`dialtone up` uploads one recording to a real
S3-compatible server with them).

The one allowed exception is the initial admin password, which the first start
prints once to the terminal by design (and keeps in the 0600 password file,
not a log). The test allows exactly that: the capture's single line that is
the indented password right after "first start: ... made with password" is
taken out before scanning (and must be there exactly once); every other line
of the capture, and every other file, is scanned for it like for any secret.
Kafka is not used by the embedded default, so no topic is read.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from application.calls import CallService
from application.identity.credentials import API_KEY_PREFIX, REFRESH_PREFIX, parse_secret
from dialtone.commands.users import PASSWORD_FILE
from dialtone.database import eventsourcing_env
from tests.e2e.test_dialtone_up import Up
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server
from tests.fixtures.sip import Sipp
from tests.integration.recordings_support import recorded_call

__all__ = ["s3_server"]
USER_PASSWORD = "correct horse battery staple 42"
WRONG_PASSWORD = "not the password at all 17"
SIP_PASSWORD = "a desk phone's digest secret 9"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's tmp root: concurrent pytest sessions chmod that root, and
    the embedded PostgreSQL refuses a data directory whose modes changed."""
    path = Path(tempfile.mkdtemp(prefix="dialtone-secrets-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection: bound, so that nothing else
    takes it while the test runs, and never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


@pytest.fixture
def up(workdir: Path, s3_server: S3Server) -> Iterator[Up]:
    started: list[DialtoneProcess] = []
    # With the S3 settings, `dialtone up` uploads recordings too (docs/recordings.md); the
    # webhook's target is on loopback, which the SSRF guard refuses unless allowed.
    settings = {**s3_server.env(s3_server.new_bucket()), "DIALTONE_RECORDINGS_POLL_S": "0.2",
                "DIALTONE_RECORDINGS_SETTLE_S": "0.5",
                "DIALTONE_RECORDINGS_RETENTION_DAYS": "30",
                "DIALTONE_WEBHOOK_ALLOW_NETS": "127.0.0.1/32"}

    def spawn(args: list[str], env: dict[str, str]) -> DialtoneProcess:
        process = DialtoneProcess(args, {**os.environ, **settings, **env},
                                  workdir / "up-output.log").start()
        started.append(process)
        return process

    running = Up(workdir, spawn, workers=1, data_dir=workdir / "data")
    yield running
    for process in started:
        process.stop()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def tampered(token: str) -> str:
    """The same JWT with one character of its signature changed."""
    head, _, signature = token.rpartition(".")
    return f"{head}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"


def fragments(secret: str) -> list[str]:
    """The secret and the parts of it that are secret on their own: a JWT's
    signature, an opaque token's or key's secret part (ids are not secrets)."""
    found = [secret]
    for prefix in (API_KEY_PREFIX, REFRESH_PREFIX):
        parsed = parse_secret(secret, prefix)
        if parsed is not None:
            found.append(parsed.secret)
    if secret.count(".") == 2:  # a JWT: header.payload.signature
        found.append(secret.rsplit(".", 1)[1])
    return found


def drive(up: Up, admin_password: str, workdir: Path, webhook_url: str) -> dict[str, str]:
    """Every credential path through the running API and one SIP call; the secrets used."""
    base = up.base
    with httpx2.Client(base_url=base, timeout=15) as http:
        wrong = http.post("/v1/auth/token", data={"username": "admin", "password": WRONG_PASSWORD})
        assert wrong.status_code == 401, wrong.text
        first = http.post("/v1/auth/token", data={"username": "admin", "password": admin_password})
        assert first.status_code == 200, first.text
        login = first.json()
        renewed = http.post("/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
        assert renewed.status_code == 200, renewed.text
        refreshed = renewed.json()
        token = refreshed["access_token"]
        assert http.get("/v1/calls", headers=bearer(token)).status_code == 200
        assert http.get("/v1/calls", headers=bearer(tampered(token))).status_code == 401
        # A replayed refresh token is refused (and revokes its family).
        assert http.post("/v1/auth/refresh",
                         json={"refresh_token": login["refresh_token"]}).status_code == 401

        made = http.post("/v1/auth/keys", headers=bearer(token),
                         json={"account": "secrets-probe", "role": "supervisor"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert http.get("/v1/agents", headers=bearer(key)).status_code == 200
        parsed = parse_secret(key, API_KEY_PREFIX)
        assert parsed is not None
        forged = f"{API_KEY_PREFIX}_{parsed.id}_{'x' * len(parsed.secret)}"
        assert http.get("/v1/agents", headers=bearer(forged)).status_code == 401

        user = http.post("/v1/auth/users", headers=bearer(token), json={
            "username": "sam", "role": "supervisor", "password": USER_PASSWORD})
        assert user.status_code == 201, user.text
        sam = http.post("/v1/auth/token", data={"username": "sam", "password": USER_PASSWORD})
        assert sam.status_code == 200, sam.text
        sam_token = sam.json()["access_token"]
        assert http.get("/v1/cdrs", headers=bearer(sam_token)).status_code == 200
        assert http.get("/v1/auth/users", headers=bearer(sam_token)).status_code == 403

        # A SIP device's password (only its digest hashes are kept) and a webhook
        # whose secret signs every attempt (the deliveries fail: the port is closed).
        assert http.put("/v1/auth/sip/domain", headers=bearer(token),
                        json={"domain": "secrets.example.com"}).status_code == 204
        device = http.post("/v1/auth/sip/credentials", headers=bearer(token),
                           json={"username": "desk-101", "password": SIP_PASSWORD})
        assert device.status_code == 201, device.text
        hook = http.post("/v1/webhooks", headers=bearer(token),
                         json={"url": webhook_url, "event_types": ["*"]})
        assert hook.status_code == 201, hook.text
        webhook_secret = hook.json()["secret"]

    # A recording the embedded uploader sends to the S3 server with its keys.
    dsn = f"postgresql://postgres@127.0.0.1:{up.pg_port}/dialtone"
    with CallService(env=eventsourcing_env(dsn, AGGREGATE_CACHE_FASTFORWARD="y")) as calls:
        recorded, _ = recorded_call(calls, up.data_dir / "recordings", 440)
        wait_for(lambda: calls.get_call(recorded).stored_recording is not None, 60,
                 "the recording uploaded by dialtone up", processes=(up.process,))

    # One real call through the worker (no number is provisioned: refused with 404).
    sipp = Sipp(workdir)
    try:
        result = sipp.uac(sipp.expect_status(404), up.sip_ports[0], service="999", calls=1,
                          rate=1)
        assert result.ok, result.errors
    finally:
        sipp.close()

    wait_for(lambda: _failed(dsn), 60, "a webhook delivery attempted (and failed)",
             processes=(up.process,))
    return {"admin password": admin_password, "user password": USER_PASSWORD,
            "SIP password": SIP_PASSWORD, "webhook secret": webhook_secret,
            "wrong password": WRONG_PASSWORD,
            "admin access token": login["access_token"],
            "admin refresh token": login["refresh_token"],
            "refreshed access token": token, "refreshed refresh token": refreshed["refresh_token"],
            "tampered token": tampered(token), "API key": key, "forged API key": forged,
            "user access token": sam_token, "user refresh token": sam.json()["refresh_token"],
            "S3 access key id": ACCESS_KEY_ID, "S3 secret access key": SECRET_ACCESS_KEY}


def _failed(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_attempts WHERE status_code IS NULL"
                           " AND error IS NOT NULL").fetchone()
    return bool(row and row[0])


def password_hashes(up: Up) -> dict[str, str]:
    url = f"postgresql://postgres@127.0.0.1:{up.pg_port}/dialtone"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT username, password_hash FROM users").fetchall()
        devices = conn.execute("SELECT username, ha1, ha1b FROM sip_subscribers").fetchall()
    assert {name for name, _ in rows} == {"admin", "sam"}
    assert [name for name, _, _ in devices] == ["desk-101"]
    return {**{f"password hash of {name}": digest for name, digest in rows},
            **{f"SIP digest ha1 of {name}": ha1 for name, ha1, _ in devices},
            **{f"SIP digest ha1b of {name}": ha1b for name, _, ha1b in devices}}


def without_first_start_password(capture: str, password: str) -> str:
    """The capture without the one line the first start prints the password on."""
    printed = re.findall(rf"made with password\n {{4}}{re.escape(password)}\n", capture)
    assert len(printed) == 1, "the first start prints the admin password exactly once"
    return capture.replace(f"made with password\n    {password}\n", "made with password\n", 1)


def logs_written(up: Up, workdir: Path) -> dict[str, str]:
    """Every log `dialtone up` wrote, by name (the allowed line taken out of the capture)."""
    capture = (workdir / "up-output.log").read_text(errors="replace")
    password = (up.data_dir / PASSWORD_FILE).read_text().strip()
    logs = {"up stdout/stderr": without_first_start_password(capture, password)}
    for path in sorted((up.data_dir / "logs").glob("*")):
        logs[str(path.relative_to(up.data_dir))] = path.read_text(errors="replace")
    logs["postgres.log"] = up.server.log_file.read_text(errors="replace")
    return logs


def leaks(logs: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """Which secret (or secret part) appears in which log, with its line."""
    found = []
    for name, text in logs.items():
        for what, secret in secrets.items():
            for fragment in fragments(secret):
                for line in text.splitlines():
                    if fragment in line:  # shown masked: the report is a log too
                        masked = line.replace(fragment, f"<{what}>")
                        found.append(f"{what} in {name}: {masked[:200]}")
    return found


def test_no_password_token_key_or_hash_in_any_log_of_an_e2e_run(up: Up, workdir: Path,
                                                                 closed_port: int) -> None:
    up.wait_ready()
    admin_password = (up.data_dir / PASSWORD_FILE).read_text().strip()
    secrets = drive(up, admin_password, workdir, f"http://127.0.0.1:{closed_port}/dialtone")
    secrets |= password_hashes(up)
    up.proc.send_signal(signal.SIGTERM)  # stops the workers and PostgreSQL, flushing their logs
    assert up.proc.wait(60) == 0, up.process.tail()
    assert not up.server.is_running()

    logs = logs_written(up, workdir)
    # The scan reads what was really written: the capture, the worker's and PostgreSQL's logs.
    assert "b2bua-" in " ".join(logs), sorted(logs)
    assert all(logs.values()), {name: len(text) for name, text in logs.items()}
    assert leaks(logs, secrets) == []
