"""What a command says when Kafka fails it: one line, the same for the live relay (its
log), `dialtone relay --from-position` and `dialtone worker` (their error)."""

from __future__ import annotations

from kafka.errors import KafkaError

from dialtone.settings import Settings


def kafka_trouble(settings: Settings, error: KafkaError) -> str:
    """Why Kafka failed us, naming where and as whom it was reached; never a password."""
    who = settings.kafka_sasl_username or "anonymous"
    detail = str(error)
    if not detail.startswith(type(error).__name__):  # kafka-python's often name themselves
        detail = f"{type(error).__name__}: {detail}"
    return (f"could not work with Kafka at {settings.kafka_bootstrap} as {who} "
            f"({settings.kafka_security_protocol}): {detail}")
