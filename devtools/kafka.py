"""A real Apache Kafka broker for development and tests, without Docker.

The broker's jars come from Maven Central through ``infra/kafka/pom.xml``
(``mvn dependency:copy-dependencies`` into a per-version cache), the storage is
formatted once with ``kafka.tools.StorageTool`` and the broker runs as
``java -cp 'libs/*' kafka.Kafka server.properties``: a single KRaft node that is
both broker and controller, listening on loopback only.

The Java process is a child of the process that calls :meth:`KafkaBroker.start`
and is asked by the kernel to terminate when that thread dies, so an
interrupted test run or a killed ``dialtone dev kafka`` never leaves a JVM behind.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import RetriableError

from dialtone.services.processes import die_with_parent

log = logging.getLogger(__name__)

# Keep in step with infra/kafka/pom.xml and the apache/kafka image in docker-compose.yml.
KAFKA_VERSION = "4.2.1"
INFRA_DIR = Path(__file__).resolve().parents[1] / "infra" / "kafka"
_LIBS_MARKER = "libs.complete"
# A development broker shares its machine with everything it serves: the JIT's
# quick tier only (no C2 compiler threads) and the serial collector (no
# concurrent GC threads). At bench.live --kafka's load (about 96 commits/s) it
# took 0.31-0.36 CPU s/s instead of 0.46-0.51 (bench/README.md, 2026-12-04).
SMALL_JVM = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


class KafkaBrokerError(RuntimeError):
    """The broker's jars could not be resolved, or it could not be formatted or started."""


def default_cache_dir() -> Path:
    """``$DIALTONE_CACHE_DIR``, else ``~/.cache/dialtone``; jars go under ``kafka/<version>``."""
    override = os.environ.get("DIALTONE_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "dialtone"


@dataclass
class KafkaBroker:
    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    cache_dir: Path = field(default_factory=default_cache_dir)
    version: str = KAFKA_VERSION
    heap: str = "512m"
    # A SASL_PLAINTEXT (SCRAM-SHA-512) client listener with ACLs on this port;
    # None (the default) is the plain broker every other test uses.
    sasl_port: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SCRAM listener's bootstrap; the plain one stays the admin's (a super user)."""
        if self.sasl_port is None:
            raise KafkaBrokerError("this broker has no SCRAM listener (sasl_port=None)")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "kafka" / self.version / "libs"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    def ensure_libs(self) -> Path:
        """Resolve the broker's jars from Maven into the cache unless already there."""
        marker = self.libs_dir.parent / _LIBS_MARKER
        if marker.exists():
            return self.libs_dir
        self.libs_dir.parent.mkdir(parents=True, exist_ok=True)
        # Two processes (a test session and `dialtone dev kafka`) may resolve at once.
        with _file_lock(self.libs_dir.parent / ".lock"):
            if not marker.exists():
                self._copy_dependencies()
                marker.write_text(f"org.apache.kafka:kafka_2.13:{self.version}\n")
        return self.libs_dir

    def start(self, timeout: float = 90.0) -> None:
        """Format the storage if new, start the broker, and wait until it serves the Kafka API."""
        if self.is_running():
            return
        self.ensure_libs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.storage_dir / "meta.properties").exists():
            self._format_storage()
        self._spawn()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM), falling back to SIGKILL after ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka broker did not stop within %.0fs; killing it", timeout)
                process.kill()
                process.wait(10)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (used by failure tests)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(10)
        self._process = None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def pid(self) -> int | None:
        return self._process.pid if self.is_running() and self._process else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _copy_dependencies(self) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaBrokerError("Maven (mvn) is needed to fetch the Kafka broker; install it")
        started = time.monotonic()
        log.info("Resolving Kafka %s from Maven Central into %s", self.version, self.libs_dir)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(INFRA_DIR / "pom.xml"),
             f"-Dkafka.version={self.version}", "dependency:copy-dependencies",
             f"-DoutputDirectory={self.libs_dir}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise KafkaBrokerError(
                f"mvn dependency:copy-dependencies failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        log.info("Kafka jars resolved in %.1fs", time.monotonic() - started)

    def _write_config(self) -> None:
        text = (INFRA_DIR / "server.properties.template").read_text()
        if self.sasl_port is not None:
            text += "\n" + (INFRA_DIR / "scram.properties.template").read_text()
        self.config_file.write_text(Template(text).substitute(
            port=self.port, controller_port=self.controller_port, log_dir=self.storage_dir,
            sasl_port=self.sasl_port,
        ))

    def _format_storage(self) -> None:
        # Static `controller.quorum.voters` means no `--standalone`: that flag is
        # only for the dynamic quorum (controller.quorum.bootstrap.servers).
        result = subprocess.run(
            self.tool_command("kafka.tools.StorageTool", "format",
                              "-t", _new_cluster_id(), "-c", str(self.config_file)),
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise KafkaBrokerError(f"kafka-storage format failed ({result.returncode}):\n"
                                   f"{result.stdout[-4000:]}{result.stderr[-4000:]}")

    def _spawn(self) -> None:
        with self.log_file.open("ab") as out:
            out.write(f"--- dialtone: starting Kafka {self.version} ---\n".encode())
            out.flush()
            self._process = subprocess.Popen(
                [*self._java_command(f"-Xmx{self.heap}"), "kafka.Kafka", str(self.config_file)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.data_dir, preexec_fn=die_with_parent,  # noqa: PLW1509 - see die_with_parent
                # Its own session: a terminal's Ctrl-C reaches only us, and we stop it in order.
                start_new_session=True,
            )

    def tool_command(self, main_class: str, *args: str) -> list[str]:
        """A command line running ``main_class`` (e.g. ``kafka.tools.StorageTool``) on the
        broker's classpath; call :meth:`ensure_libs` first."""
        return [*self._java_command(), main_class, *args]

    def _java_command(self, *jvm_options: str) -> list[str]:
        return [
            _java(), *jvm_options, "-Xms64m", "-XX:+ExitOnOutOfMemoryError", *SMALL_JVM,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={INFRA_DIR / 'log4j2.properties'}",
            "-cp", f"{self.libs_dir}/*",
        ]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise KafkaBrokerError(f"Kafka broker exited during start-up:\n{self.log_tail()}")
            if self._serves_metadata():
                return
            time.sleep(0.25)
        raise KafkaBrokerError(f"Kafka broker not ready on {self.bootstrap} after {timeout:.0f}s:"
                               f"\n{self.log_tail()}")

    def _serves_metadata(self) -> bool:
        """True once the broker answers a DescribeCluster with itself registered and unfenced."""
        # The admin client bootstraps in its constructor and leaves its IO thread
        # behind when that fails, so only build one once the port accepts.
        if not _port_open(self.port):
            return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000,
                                     bootstrap_timeout_ms=5000)
        except RetriableError:
            return False
        try:
            brokers = admin.describe_cluster().get("brokers", [])
        except RetriableError:
            return False
        finally:
            admin.close()
        return any(not broker.get("is_fenced", False) for broker in brokers)


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Kafka's own generator rejects ids starting with '-' because command lines
    take them for options; we do the same.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise KafkaBrokerError("Java 17+ is needed to run the Kafka broker; install a JDK")
    return found


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
