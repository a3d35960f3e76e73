"""Access-control settings, read from `DIALTONE_AUTH_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALTONE_AUTH_", extra="ignore")

    signing_key: SecretStr | None = Field(
        default=None, description="HS256 key of dialtone's own tokens; unset: made at first "
        "start and kept in the database (table auth_signing_key).")
    issuer: str = "dialtone"
    audience: str = "dialtone-api"
    access_ttl_s: int = Field(default=900, gt=0, description="Access token lifetime.")
    refresh_ttl_s: int = Field(
        default=8 * 3600, gt=0, description="How long a login's refresh tokens last, counted "
        "from the login: a refresh never extends it.")
    lockout_failures: int = Field(default=5, gt=0, description="Failed logins that lock.")
    lockout_window_s: int = Field(default=300, gt=0, description="Window the failures count in.")
    lockout_s: int = Field(default=60, gt=0, description="How long a username stays locked.")
    state_ttl_s: float = Field(
        default=5.0, ge=0, description="How long an API process trusts its cached view of an "
        "account (disabled, role, revoked key) before asking the database again.")
    oidc_issuer: str | None = Field(default=None, description="External OIDC issuer (`iss`).")
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_role_claim: str = "role"
    oidc_tenant_claim: str = "tenant"
    oidc_jwks_cache_s: int = 300
