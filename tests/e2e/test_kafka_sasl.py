"""Kafka with SASL/SCRAM and ACLs (issue 9, section 6), on the real broker.

The broker of ``shared_scram_kafka_broker`` authenticates clients with
SCRAM-SHA-512 and denies what no ACL allows; its users and ACLs are provisioned
by the code docker-compose.yml's ``kafka-init`` job runs
(dialtone.services.kafka_acls). ``dialtone relay`` and ``dialtone worker`` run as
processes with their credentials from the environment, as they do in the compose
file.

The module's tests share one broker (one JVM start, not five): each test has
users of its own names with ACLs on a topic prefix of its own, as two
deployments sharing a cluster would, and reads only the broker log written
since it started.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError

from application.calls import CallService
from devtools.kafka import KafkaBroker
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.kafka_acls import ROLES, Account, provision
from streams.topics import topic_for
from tests.fixtures.kafka import log_offset, log_since
from tests.fixtures.processes import DIALTONE, DialtoneProcess, wait_for

pytestmark = pytest.mark.kafka
MECHANISM = "SCRAM-SHA-512"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_consumer.py"


@dataclass
class SecuredStack:
    broker: KafkaBroker
    database_url: str
    passwords: dict[str, str]  # by role
    service: CallService
    spawn: Callable[[list[str], dict[str, str]], DialtoneProcess]
    prefix: str  # DIALTONE_TOPIC_PREFIX: this test's topics, groups and transactional ids
    users: dict[str, str]  # role -> this test's username for it
    log_start: int  # where the broker's log was when the test began

    @property
    def calls_topic(self) -> str:
        return topic_for("call", self.prefix)

    def env(self, role: str, password: str) -> dict[str, str]:
        """What a service of docker-compose.yml gets: the SCRAM listener and its account."""
        return {"DATABASE_URL": self.database_url,
                "DIALTONE_KAFKA_BOOTSTRAP": self.broker.sasl_bootstrap,
                "DIALTONE_TOPIC_PREFIX": self.prefix,
                "DIALTONE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "DIALTONE_KAFKA_SASL_MECHANISM": MECHANISM,
                "DIALTONE_KAFKA_SASL_USERNAME": self.users[role],
                "DIALTONE_KAFKA_SASL_PASSWORD": password}

    def run(self, command: str, password: str | None = None) -> DialtoneProcess:
        """``dialtone relay`` as the relay user, ``dialtone worker`` as the worker user."""
        return self.spawn([command], self.env(command, password or self.passwords[command]))

    def client(self, role: str) -> dict[str, object]:
        return {"bootstrap_servers": self.broker.sasl_bootstrap,
                "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": MECHANISM,
                "sasl_plain_username": self.users[role],
                "sasl_plain_password": self.passwords[role]}

    def broker_log(self) -> str:
        """What the broker logged since this test began."""
        return log_since(self.broker, self.log_start)

    def cdr_count(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    def end_offsets(self) -> int:
        """The calls topic's end offsets summed (records and transaction markers), read over
        the broker's admin (super user) listener: 0 means nothing was ever published."""
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=None,
                                 enable_auto_commit=False)
        try:
            partitions = [TopicPartition(self.calls_topic, p)
                          for p in consumer.partitions_for_topic(self.calls_topic) or ()]
            return sum(consumer.end_offsets(partitions).values()) if partitions else 0
        finally:
            consumer.close()


@pytest.fixture
def secured(shared_scram_kafka_broker: KafkaBroker, database_url: str,
            dialtone_processes: Callable[..., DialtoneProcess]) -> SecuredStack:
    broker = shared_scram_kafka_broker
    apply_migrations(database_url)
    tag = uuid.uuid4().hex[:8]
    prefix = f"t{tag}."
    users = {role: f"{role}-{tag}" for role in ROLES}
    passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
    start = log_offset(broker)
    provision(broker.bootstrap, [Account(role, users[role], passwords[role]) for role in ROLES],
              prefix)
    return SecuredStack(broker, database_url, passwords,
                        CallService(env=eventsourcing_env(database_url)), dialtone_processes,
                        prefix, users, start)


def test_relay_and_worker_authenticate_and_events_reach_the_projections(
    secured: SecuredStack,
) -> None:
    relay, worker = secured.run("relay"), secured.run("worker")
    lifecycles(secured.service, 2, "scram")

    wait_for(lambda: secured.cdr_count() == 2, 120, "both CDRs through the SCRAM broker",
             processes=(relay, worker))
    assert relay.alive()
    assert worker.alive()
    relay.stop()
    worker.stop()
    logs = relay.log.read_text(errors="replace") + worker.log.read_text(errors="replace")
    assert not [role for role, password in secured.passwords.items() if password in logs]


def test_integrator_reads_the_topics_but_may_not_write(secured: SecuredStack) -> None:
    relay = secured.run("relay")
    lifecycles(secured.service, 1, "integrator")
    wait_for(lambda: secured.end_offsets() > EVENTS_PER_LIFECYCLE, 90,
             "the call's events and their commit marker", processes=(relay,))
    relay.stop()
    published = secured.end_offsets()

    consumer = KafkaConsumer(secured.calls_topic, group_id=f"{secured.prefix}integrator-e2e",
                             auto_offset_reset="earliest", consumer_timeout_ms=20_000,
                             **secured.client("integrator"))
    try:
        read = [record for _, record in zip(range(EVENTS_PER_LIFECYCLE), consumer, strict=False)]
    finally:
        consumer.close()
    assert len(read) == EVENTS_PER_LIFECYCLE

    # Neither the integrator nor the worker may write the event topics: only the relay.
    for role in ("integrator", "worker"):
        # Not idempotent: the broker's answer is then the topic's ACL, not the cluster's.
        producer = KafkaProducer(enable_idempotence=False, retries=0, max_block_ms=20_000,
                                 **secured.client(role))
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(secured.calls_topic, key=b"forged", value=b"{}").get(timeout=20)
        finally:
            producer.close(timeout=5)
    assert secured.end_offsets() == published


def test_the_example_consumer_reads_as_the_integrator(secured: SecuredStack) -> None:
    """examples/kafka_consumer.py (docs/events.md) through SCRAM, as the integrator user in
    its default group (``<prefix>integrator-example``, one the ACLs allow), the password
    from the environment only; a group outside ``integrator-*`` is refused."""
    relay = secured.run("relay")
    lifecycles(secured.service, 1, "example")
    wait_for(lambda: secured.end_offsets() > EVENTS_PER_LIFECYCLE, 90,
             "the call's events and their commit marker", processes=(relay,))
    relay.stop()

    def example(*extra: str) -> subprocess.CompletedProcess[str]:
        password = secured.passwords["integrator"]
        command = [sys.executable, str(EXAMPLE), "--bootstrap", secured.broker.sasl_bootstrap,
                   "--prefix", secured.prefix, "--topics", "calls",
                   "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", MECHANISM,
                   "--username", secured.users["integrator"], "--idle-timeout", "20", *extra]
        assert password not in command
        return subprocess.run(command, env={**os.environ, "KAFKA_SASL_PASSWORD": password},
                              capture_output=True, text=True, timeout=120, check=False)

    read = example("--max-messages", str(EVENTS_PER_LIFECYCLE))
    assert read.returncode == 0, read.stderr[-3000:]
    events = [json.loads(line) for line in read.stdout.splitlines()]
    assert len(events) == EVENTS_PER_LIFECYCLE
    assert {event["topic"] for event in events} == {secured.calls_topic}

    refused = example("--group", f"{secured.prefix}crm", "--max-messages", "1")
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "may only join groups named" in refused.stderr
    assert "GroupAuthorizationFailed" in refused.stderr, refused.stderr[-3000:]
    assert secured.passwords["integrator"] not in read.stderr + refused.stderr


def test_relay_with_a_wrong_password_is_refused_and_publishes_nothing(
    secured: SecuredStack,
) -> None:
    lifecycles(secured.service, 1, "refused")
    wrong = secrets.token_urlsafe(18)
    relay = secured.run("relay", password=wrong)

    wait_for(lambda: not relay.alive(), 120, "the relay to give up", processes=(relay,))
    assert relay.proc is not None
    assert relay.proc.returncode != 0
    output = relay.log.read_text(errors="replace")
    assert "could not work with Kafka at" in output, output[-3000:]
    assert f" as {secured.users['relay']} (SASL_PLAINTEXT)" in output
    assert wrong not in output
    # kafka-python only sees the broker hang up; the broker says why.
    assert "due to invalid credentials with SASL mechanism SCRAM-SHA-512" in (
        secured.broker_log())
    assert secured.end_offsets() == 0


def test_worker_with_a_wrong_password_is_refused(secured: SecuredStack) -> None:
    wrong = secrets.token_urlsafe(18)
    worker = secured.run("worker", password=wrong)

    wait_for(lambda: not worker.alive(), 120, "the worker to give up", processes=(worker,))
    assert worker.proc is not None
    assert worker.proc.returncode != 0
    output = worker.log.read_text(errors="replace")
    assert "Unable to bootstrap" in output, output[-3000:]
    assert wrong not in output
    assert "due to invalid credentials with SASL mechanism SCRAM-SHA-512" in (
        secured.broker_log())


def test_relay_user_may_republish_a_range(secured: SecuredStack) -> None:
    """`dialtone relay --from-position` uses its own transactional id; the relay's ACLs cover it."""
    lifecycles(secured.service, 1, "republish")
    result = subprocess.run(
        [str(DIALTONE), "relay", "--from-position", "1", "--application", "CallService"],
        env={**os.environ, **secured.env("relay", secured.passwords["relay"])},
        capture_output=True, text=True, check=False, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert secured.end_offsets() > EVENTS_PER_LIFECYCLE
