"""One settings object for every entry point, read from the environment.

With nothing set, dialtone runs on its embedded default: an embedded PostgreSQL
under ``DIALTONE_DATA_DIR`` and projections fed in-process. ``DATABASE_URL`` and
``DIALTONE_KAFKA_BOOTSTRAP`` switch the same code to external servers.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "dialtone"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALTONE_", extra="ignore")

    database_url: str | None = Field(
        default=None, repr=False,  # it may hold a password: out of every printed Settings
        validation_alias=AliasChoices("DATABASE_URL", "DIALTONE_DATABASE_URL"),
        description="PostgreSQL DSN; unset means the embedded server.",
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset means in-process projections."
    )
    topic_prefix: str = Field(default="", description="Prefix of every Kafka topic name.")
    # Kafka authentication (docs/kafka.md): PLAINTEXT, or SASL/SCRAM per service.
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: str = Field(
        default="SCRAM-SHA-512", description="SCRAM-SHA-512 or SCRAM-SHA-256.")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="Never logged: SecretStr prints as '**********'.")
    data_dir: Path = Field(default_factory=_default_data_dir)
    embedded_pg_port: int = 55432
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Prometheus metrics (docs/observability.md): the API serves GET /metrics on its HTTP
    # port; relay, worker, router and b2bua serve them on this port (0: not served). In
    # `dialtone up`, the first B2BUA worker's; the next workers take the next ports.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"
    access_log: bool = Field(
        default=False, description="One log line per HTTP request (uvicorn's access log). Off by "
        "default: GET /metrics counts and times every request, and a line per request at "
        "hundreds of requests/s is CPU on the event loop (bench/api.py).")
    # Health (see api.health and application.heartbeats).
    heartbeat_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between each process's heartbeats (read by "
        "the processes themselves, as DIALTONE_HEARTBEAT_INTERVAL_S).")
    heartbeat_stale_after: float = Field(
        default=3.0, gt=1, description="A heartbeat older than this many intervals is stale.")
    heartbeat_forget_s: float = Field(
        default=3600.0, gt=0, description="Seconds after which health forgets the row of a "
        "replica named after its host (a lost or stopped pod's) once another instance of its "
        "service runs; read by the API, as DIALTONE_HEARTBEAT_FORGET_S (docs/health.md).")
    sip_trusted_sources: str = Field(
        default="127.0.0.0/8,::1", description="Addresses and networks (comma-separated) a "
        "B2BUA worker takes INVITEs from: the SIP edge's. Others get 403 (docs/edge.md).")
    sip_edge: str | None = Field(
        default=None, description="The SIP edge (Kamailio with the registrar) as host:port: "
        "a B2BUA worker sends its offers to registering devices (AORs in a tenant's SIP "
        "domain) through it (docs/edge.md, Registrar). Unset: devices are dialled directly.")
    sip_device_auth: bool = Field(
        default=False, description="The SIP edge authenticates devices' INVITEs (Kamailio "
        "with its registrar) and names their tenant: a B2BUA worker then takes a call to none "
        "of the tenants' numbers only from such a device, as that tenant's; others get 403 "
        "(docs/edge.md, Calls from devices).")
    projection_stall_s: float = Field(
        default=30.0, gt=0, description="A projection behind and not advancing this long is "
        "stalled.")
