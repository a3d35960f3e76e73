"""Kafka client authentication settings and the per-service ACL table (no broker here;
tests/e2e/test_kafka_sasl.py proves them against the real one)."""

from __future__ import annotations

import faust
import pytest
from kafka.admin import ACLOperation, ResourceType

from dialtone.kafka_settings import kafka_auth
from dialtone.services.kafka_acls import Account, grants
from dialtone.settings import Settings
from streams.kafka_auth import KafkaAuth


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    auth = kafka_auth(Settings())
    assert auth == KafkaAuth()
    assert auth.kafka_python() == {}
    assert auth.faust_credentials() is None


def test_scram_settings_reach_both_clients_and_the_password_never_prints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "s3cr3t-not-in-any-log"
    for name, value in {"SECURITY_PROTOCOL": "sasl_plaintext", "SASL_USERNAME": "relay",
                        "SASL_PASSWORD": secret}.items():
        monkeypatch.setenv(f"DIALTONE_KAFKA_{name}", value)
    settings = Settings()
    auth = kafka_auth(settings)

    assert auth.kafka_python() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "relay", "sasl_plain_password": secret}
    credentials = auth.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("relay", secret)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert secret not in repr(auth) + repr(settings) + repr(credentials)


@pytest.mark.parametrize(("protocol", "mechanism", "username", "password"), [
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", None, "x" * 12),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", "relay", None),
    ("SASL_PLAINTEXT", "PLAIN", "relay", "x" * 12),
    ("SSL", "SCRAM-SHA-512", None, None),
])
def test_incomplete_or_unsupported_settings_are_refused(
    protocol: str, mechanism: str, username: str | None, password: str | None,
) -> None:
    with pytest.raises(ValueError, match=r"Kafka|SASL|protocol|mechanism"):
        KafkaAuth(protocol, mechanism, username, password)


def _operations(role: str, resource: ResourceType, prefix: str = "") -> set[ACLOperation]:
    return {op for grant in grants(role, prefix) if grant.resource == resource
            and grant.name.startswith(f"{prefix}dialtone.") for op in grant.operations}


def test_only_the_relay_may_write_the_event_topics() -> None:
    assert ACLOperation.WRITE in _operations("relay", ResourceType.TOPIC)
    assert ACLOperation.WRITE not in _operations("integrator", ResourceType.TOPIC)
    assert not [g.name for g in grants("webhooks") if ACLOperation.WRITE in g.operations
                or ACLOperation.ALL in g.operations]
    worker_writes = [g.name for g in grants("worker") if ACLOperation.WRITE in g.operations
                     or ACLOperation.ALL in g.operations]
    assert worker_writes
    assert all(name.endswith(".dlq") or name.startswith("dialtone-projections-")
               for name in worker_writes)


def test_the_topic_prefix_scopes_every_grant() -> None:
    for role in ("relay", "worker", "webhooks", "integrator"):
        assert all(grant.name.startswith("t1.") for grant in grants(role, "t1."))


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="12"):
        Account("relay", "relay", "short")


def test_sasl_ssl_verifies_the_broker_in_both_clients() -> None:
    auth = KafkaAuth("SASL_SSL", "SCRAM-SHA-256", "worker", "x" * 12)
    assert auth.kafka_python()["security_protocol"] == "SASL_SSL"
    credentials = auth.faust_credentials()
    assert credentials is not None
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is not None
    assert credentials.ssl_context.check_hostname


def test_the_relay_may_use_the_transactional_ids_it_publishes_and_republishes_with() -> None:
    ids = {g.name for g in grants("relay", "t1.") if g.resource == ResourceType.TRANSACTIONAL_ID}
    assert ids == {"t1.dialtone-relay-", "t1.dialtone-republish-"}
