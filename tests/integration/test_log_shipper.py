"""The compose stack's log shipper (infra/log-shipper/config.yml), checked by the
OpenTelemetry Collector itself: built by the official builder from
infra/log-shipper/builder.yaml (the compose image's components at its release;
``./dev test`` builds it, ensure_log_shipper), it validates the config and rejects a
broken one; run on Docker json-file lines in a temporary directory, it sends what
Loki will receive to a loopback OTLP/HTTP receiver: dialtone's lines labelled by
service, level and tenant (docs/observability.md), other containers' lines not at
all. docker-compose.yml mounts that config into the shipper and labels the dialtone
services' logs; Loki indexes those three resource attributes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.fixtures.processes import terminate
from tests.integration.test_compose_file import COMPOSE_FILE, REPO, run_compose

SHIPPER = REPO / "infra" / "log-shipper"
CONFIG = SHIPPER / "config.yml"
MANIFEST = SHIPPER / "builder.yaml"
COMPOSE_SERVICE = "com.docker.compose.service"


def collector_binary() -> Path:
    """Where ./dev test's ensure_log_shipper builds the collector of this manifest
    (its TOOL_CACHE: $DIALTONE_CACHE_DIR, else ~/.cache/dialtone)."""
    cache = Path(os.environ.get("DIALTONE_CACHE_DIR") or Path.home() / ".cache" / "dialtone")
    digest = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()[:16]
    return cache / "log-shipper" / digest / "dist" / "otelcol-dialtone"


@pytest.fixture(scope="module")
def otelcol() -> Path:
    binary = collector_binary()
    assert binary.exists(), f"{binary} missing: `./dev test` builds it (ensure_log_shipper)"
    return binary


def validate(binary: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "validate", f"--config={config}"], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_collector_accepts_the_shipper_config(otelcol: Path) -> None:
    result = validate(otelcol, CONFIG)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("good", "bad"), [("type: json_parser", "type: json_parsr"),
                                           ("    start_at:", "    start_from:")],
                         ids=["operator-type", "receiver-key"])
def test_the_collector_rejects_a_misspelt_config(otelcol: Path, tmp_path: Path, good: str,
                                                 bad: str) -> None:
    # (An operator's own fields are decoded when the pipeline starts, not by
    # `validate`: the run below is what checks them.)
    broken = tmp_path / "config.yml"
    broken.write_text(CONFIG.read_text().replace(good, bad))
    result = validate(otelcol, broken)
    assert result.returncode != 0
    assert bad.rsplit(maxsplit=1)[-1].rstrip(":") in result.stderr


# --- A run on Docker json-file lines ------------------------------------------------------


@dataclass
class Entry:
    """One log record as Loki receives it: its resource's attributes (the index labels),
    its body (the line) and its severity."""

    labels: dict[str, str]
    body: str
    severity: str


class OtlpReceiver(ThreadingHTTPServer):
    """A loopback OTLP/HTTP logs endpoint (what Loki's /otlp/v1/logs takes) keeping
    every record it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.entries: list[Entry] = []
        self.paths: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/otlp"


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":  # the exporter's default
            body = gzip.decompress(body)
        request = ExportLogsServiceRequest.FromString(body)
        for resource_logs in request.resource_logs:
            labels = {a.key: a.value.string_value
                      for a in resource_logs.resource.attributes}
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    self.server.entries.append(Entry(labels, record.body.string_value,
                                                     record.severity_text))
        self.server.paths.add(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def docker_line(line: str, service: str | None) -> str:
    """One line of Docker's json-file log; `attrs` as the `labels` logging option writes it."""
    record: dict[str, Any] = {"log": line + "\n", "stream": "stderr",
                              "time": "2026-12-03T08:00:00.123456789Z"}
    if service is not None:
        record["attrs"] = {COMPOSE_SERVICE: service}
    return json.dumps(record)


API_LINE = json.dumps({"time": "2026-12-03T08:00:00.100000Z", "level": "warning",
                       "process": "api", "logger": "api.app", "message": "slow request",
                       "tenant": "acme", "request_id": "9f1c", "call_id": "c-1"})
RELAY_LINE = json.dumps({"time": "2026-12-03T08:00:01Z", "level": "info", "process": "relay",
                         "logger": "streams.relay", "message": "published 20 events",
                         "position": 20})
PJLIB_LINE = "08:00:00.000         os_core_unix.c !pjlib 2.15.1 for POSIX initialized"


def test_dialtone_lines_reach_loki_labelled_by_service_level_and_tenant(
        otelcol: Path, receiver: OtlpReceiver, tmp_path: Path) -> None:
    containers = tmp_path / "containers"
    for container, lines in {
        "a1": [docker_line(API_LINE, "api")],
        "b2": [docker_line(RELAY_LINE, "relay"), docker_line(PJLIB_LINE, "b2bua")],
        "k3": [docker_line("[2026-12-03 08:00:00] INFO Kafka started", None)],  # not ours
    }.items():
        (containers / container).mkdir(parents=True)
        (containers / container / f"{container}-json.log").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "LOG_SHIPPER_INCLUDE": f"{containers}/*/*-json.log",
           "LOG_SHIPPER_START_AT": "beginning", "LOG_SHIPPER_STORAGE": str(tmp_path / "storage"),
           "LOKI_OTLP_ENDPOINT": receiver.endpoint}
    log = (tmp_path / "otelcol.log").open("wb")
    process = subprocess.Popen([str(otelcol), f"--config={CONFIG}"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while len(receiver.entries) < 3 and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "otelcol.log").read_text()
            time.sleep(0.2)
    finally:
        terminate(process, 10)
    output = (tmp_path / "otelcol.log").read_text()
    assert receiver.paths == {"/otlp/v1/logs"}, output
    by_service = {e.labels["service"]: e for e in receiver.entries}
    assert set(by_service) == {"api", "relay", "b2bua"}, (receiver.entries, output)
    assert len(receiver.entries) == 3
    api, relay, b2bua = by_service["api"], by_service["relay"], by_service["b2bua"]
    # Labels: bounded ones only; the line is dialtone's JSON as written, so Loki's
    # `| json` reads request_id, call_id, position... as fields.
    assert api.labels == {"service": "api", "level": "warning", "tenant": "acme"}
    assert (api.severity, json.loads(api.body)) == ("warning", json.loads(API_LINE))
    assert relay.labels == {"service": "relay", "level": "info"}
    assert json.loads(relay.body)["position"] == 20
    assert b2bua.labels == {"service": "b2bua"}  # not JSON: shipped as text, no level
    assert b2bua.body.strip() == PJLIB_LINE


# --- The compose stack ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_runs_this_config_at_the_manifests_release(stack: dict[str, Any]) -> None:
    shipper = stack["services"]["log-shipper"]
    [flag] = [a for a in shipper["command"] if a.startswith("--config=")]
    binds = {v["target"]: Path(v["source"]) for v in shipper["volumes"] if v["type"] == "bind"}
    assert binds[flag.removeprefix("--config=")] == CONFIG
    version = yaml.safe_load(MANIFEST.read_text())["dist"]["version"]
    assert shipper["image"] == f"otel/opentelemetry-collector-contrib:{version}"
    targets = {v["target"]: v for v in shipper["volumes"]}
    logs = targets["/var/lib/docker/containers"]
    assert logs["read_only"] is True
    assert stack["volumes"][logs["source"]]["driver_opts"]["o"] == "bind"


def test_every_dialtone_service_logs_its_compose_name_for_the_shipper(
        stack: dict[str, Any]) -> None:
    for name in ("migrate", "api", "relay", "router", "worker", "b2bua"):
        logging = stack["services"][name]["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"]["labels"] == COMPOSE_SERVICE, name


def test_loki_indexes_the_documented_labels_from_otlp() -> None:
    loki = yaml.safe_load((REPO / "infra" / "loki" / "loki.yml").read_text())
    limits = loki["limits_config"]
    assert limits["allow_structured_metadata"] is True
    [rule] = limits["otlp_config"]["resource_attributes"]["attributes_config"]
    assert rule == {"action": "index_label", "attributes": ["service", "level", "tenant"]}
    documented = (REPO / "docs" / "observability.md").read_text()
    for label in ("service", "level", "tenant"):
        assert f"`{label}`" in documented
