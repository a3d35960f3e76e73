"""How dialtone's Kafka clients authenticate: nothing (PLAINTEXT) or SASL/SCRAM.

One value carries the settings to both client libraries: kafka-python (the
relay's producer, admin and tail reader) and Faust/aiokafka (the workers), so
the two can never disagree. The password is kept out of ``repr`` and so out of
every log line that prints a config.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

PLAINTEXT = "PLAINTEXT"
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
SCRAM_MECHANISMS = frozenset({"SCRAM-SHA-256", "SCRAM-SHA-512"})


@dataclass(frozen=True)
class KafkaAuth:
    security_protocol: str = PLAINTEXT
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.security_protocol not in SASL_PROTOCOLS | {PLAINTEXT}:
            raise ValueError(f"unsupported Kafka security protocol {self.security_protocol!r}")
        if not self.uses_sasl:
            return
        if self.sasl_mechanism not in SCRAM_MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {self.sasl_mechanism!r} "
                             f"(one of {sorted(SCRAM_MECHANISMS)})")
        if not self.username or not self.password:
            raise ValueError(f"{self.security_protocol} needs a Kafka username and password")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        if not self.uses_sasl:
            return {}
        return {"security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password}

    def faust_credentials(self) -> faust.SASLCredentials | None:
        """Faust's ``broker_credentials`` (None: PLAINTEXT).

        Faust derives SASL_SSL from the presence of an ssl_context; with SASL_SSL
        both libraries verify the broker against the system's CAs.
        """
        if not self.uses_sasl:
            return None
        import faust  # noqa: PLC0415 - only the worker needs Faust; the relay stays light

        context = ssl.create_default_context() if self.security_protocol == "SASL_SSL" else None
        return faust.SASLCredentials(username=self.username, password=self.password,
                                     mechanism=self.sasl_mechanism, ssl_context=context)
