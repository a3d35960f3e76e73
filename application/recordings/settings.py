"""Recording storage settings, read from ``DIALTONE_RECORDINGS_*`` environment variables.

The S3 keys are secrets: ``SecretStr`` (never printed, never logged, never in an
event or a topic). Unset, boto3 finds credentials its usual way (``AWS_*``
variables, an instance or pod role).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.addressing import check_tenant
from domain.errors import InvalidValue


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether object storage is set up (an endpoint or a bucket named): `dialtone up`
    then runs the uploader too."""
    return any(environ.get(f"DIALTONE_RECORDINGS_S3_{name}") for name in ("ENDPOINT_URL",
                                                                          "BUCKET"))


class RecordingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALTONE_RECORDINGS_", extra="ignore")

    directory: Path | None = Field(
        default=None, description="Where the B2BUA workers write recordings (their "
        "`--recordings-dir`); default DIALTONE_DATA_DIR/recordings.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO: `http://minio:9000`); "
        "unset: AWS S3.")
    s3_region: str = "us-east-1"
    s3_bucket: str = Field(default="dialtone-recordings", min_length=3, max_length=63)
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = Field(
        default=True, description="Path-style addressing (`endpoint/bucket/key`), as MinIO "
        "and most S3-compatible servers need.")
    download: Literal["stream", "redirect"] = Field(
        default="stream", description="GET /v1/calls/{id}/recording streams the object "
        "through the API (`stream`), or answers 307 to a presigned URL (`redirect`).")
    presign_expires_s: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    retention_days: float | None = Field(
        default=None, gt=0, description="Objects older than this many days are deleted; "
        "unset: kept.")
    retention_by_tenant: str = Field(
        default="", description="Per-tenant retention in days overriding `retention_days`, "
        "e.g. `acme=30,bank=3650`.")
    retention_every_s: float = Field(default=3600.0, gt=0, description="How often retention "
                                     "runs.")
    poll_s: float = Field(default=2.0, gt=0, description="How often the directory is scanned.")
    settle_s: float = Field(default=5.0, ge=0, description="A file written to more recently "
                            "than this is a call still being recorded: not looked at yet.")
    backoff_base_s: float = Field(default=1.0, gt=0, description="Wait after a first failed "
                                  "upload of a file.")
    backoff_max_s: float = Field(default=300.0, gt=0, description="Longest wait between tries.")

    def tenant_retention(self) -> dict[str, float]:
        """``retention_by_tenant`` parsed: tenant -> days (ValueError naming a bad entry)."""
        found: dict[str, float] = {}
        for entry in filter(None, (e.strip() for e in self.retention_by_tenant.split(","))):
            tenant, sep, days = entry.partition("=")
            try:
                value = float(days) if sep else -1.0
            except ValueError:
                value = -1.0
            if value <= 0:
                raise ValueError(f"DIALTONE_RECORDINGS_RETENTION_BY_TENANT: {entry!r} is not "
                                 "tenant=days (days > 0)")
            try:
                found[check_tenant(tenant.strip())] = value
            except InvalidValue as error:
                raise ValueError(f"DIALTONE_RECORDINGS_RETENTION_BY_TENANT: {error}") from None
        return found

    def retention_for(self, tenant: str) -> float | None:
        """Days recordings of ``tenant`` are kept (None: forever)."""
        return self.tenant_retention().get(tenant, self.retention_days)
