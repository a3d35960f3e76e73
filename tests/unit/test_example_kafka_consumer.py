"""examples/kafka_consumer.py's connection options, without a broker: PLAINTEXT by
default (``dialtone dev kafka``), SCRAM when asked, the password from the environment
only, and a default group the integrator user's ACLs allow; and its check of a
message, old ones included. Reading a real broker is tested in tests/e2e
(test_topics_independent_client.py, test_kafka_sasl.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from streams.schemas_examples import example_messages

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_consumer.py"
ENV = ("KAFKA_BOOTSTRAP", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
       "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE")


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    spec = importlib.util.spec_from_file_location("kafka_consumer_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_are_the_local_plaintext_broker(example: ModuleType) -> None:
    args = example.arguments([])
    assert (args.bootstrap, args.security_protocol) == ("127.0.0.1:9092", "PLAINTEXT")
    assert args.group == "integrator-example"
    assert example.connection(args) == {}


def test_the_default_group_carries_the_topic_prefix(example: ModuleType) -> None:
    assert example.arguments(["--prefix", "acme."]).group == "acme.integrator-example"
    assert example.arguments(["--group", "integrator-crm"]).group == "integrator-crm"


def test_scram_with_the_password_from_the_environment(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "change-me-integrator")
    args = example.arguments(["--security-protocol", "SASL_PLAINTEXT",
                              "--username", "integrator"])
    assert example.connection(args) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "integrator", "sasl_plain_password": "change-me-integrator"}


def test_every_connection_setting_may_come_from_the_environment(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"KAFKA_BOOTSTRAP": "kafka.example:9093",
                        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                        "KAFKA_SASL_USERNAME": "integrator",
                        "KAFKA_SASL_PASSWORD": "a-password-of-12",
                        "KAFKA_SSL_CAFILE": "/etc/ssl/kafka-ca.pem"}.items():
        monkeypatch.setenv(name, value)
    args = example.arguments([])
    assert args.bootstrap == "kafka.example:9093"
    assert example.connection(args) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "integrator", "sasl_plain_password": "a-password-of-12",
        "ssl_cafile": "/etc/ssl/kafka-ca.pem"}


def test_there_is_no_password_option(example: ModuleType) -> None:
    with pytest.raises(SystemExit) as exited:
        example.arguments(["--password", "secret"])
    assert exited.value.code == 2


@pytest.mark.parametrize(("argv", "env"), [
    (["--security-protocol", "SASL_PLAINTEXT", "--username", "integrator"], {}),
    (["--security-protocol", "SASL_PLAINTEXT"], {"KAFKA_SASL_PASSWORD": "change-me-integrator"}),
    ([], {"KAFKA_SECURITY_PROTOCOL": "SSL"}),
    ([], {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
          "KAFKA_SASL_USERNAME": "integrator", "KAFKA_SASL_PASSWORD": "change-me-integrator"}),
])
def test_incomplete_or_unknown_settings_are_usage_errors(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        example.arguments(argv)
    assert exited.value.code == 2
    assert "change-me-integrator" not in capsys.readouterr().err


def _record(event: dict[str, Any], headers: list[tuple[str, bytes]] | None) -> SimpleNamespace:
    """A kafka-python ConsumerRecord as far as the example's check reads it."""
    return SimpleNamespace(headers=headers, value=json.dumps(event).encode(),
                           key=event["subject"].encode())


@pytest.fixture(scope="module")
def ended() -> dict[str, Any]:
    return next(m for m in example_messages() if m["type"] == "dialtone.call.ended.v1")


@pytest.mark.parametrize("headers", [None, []])
def test_a_message_published_before_the_header_and_the_padding_is_valid(
    example: ModuleType, ended: dict[str, Any], headers: list[tuple[str, bytes]] | None,
) -> None:
    """Messages from before 2026-12-02, still on the topics: no content-type header,
    an unpadded sequence."""
    [validator] = example.validators(example.SCHEMAS, "", ["calls"]).values()
    old = {**ended, "sequence": "1874"}
    assert example.problems(_record(old, headers), validator) == []


def test_a_message_of_another_content_type_is_not_valid(
    example: ModuleType, ended: dict[str, Any],
) -> None:
    [validator] = example.validators(example.SCHEMAS, "", ["calls"]).values()
    current = [("content-type", b"application/cloudevents+json; charset=UTF-8")]
    assert example.problems(_record(ended, current), validator) == []
    avro = [("content-type", b"application/avro")]
    assert example.problems(_record(ended, avro), validator) == [
        "content-type 'application/avro' is not a CloudEvent"]


def test_the_example_imports_nothing_of_dialtone() -> None:
    """Integrators copy it: kafka-python and jsonschema are all it needs."""
    source = EXAMPLE.read_text()
    for package in ("dialtone", "streams", "projections", "application", "api", "domain"):
        assert f"from {package}" not in source
        assert f"import {package}" not in source
