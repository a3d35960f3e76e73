"""Settings -> the Kafka authentication every dialtone Kafka client uses."""

from __future__ import annotations

from dialtone.settings import Settings
from streams.kafka_auth import KafkaAuth


def kafka_auth(settings: Settings) -> KafkaAuth:
    """From DIALTONE_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD."""
    password = settings.kafka_sasl_password
    return KafkaAuth(security_protocol=settings.kafka_security_protocol.upper(),
                     sasl_mechanism=settings.kafka_sasl_mechanism.upper(),
                     username=settings.kafka_sasl_username,
                     password=password.get_secret_value() if password else None)
