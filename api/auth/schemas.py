"""Request and response bodies of the auth routes. No response ever carries a
password or a hash; an API key's secret appears once, in `KeyCreated`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.call_control import DEVICE_PATTERN
from api.schemas.targets import KEY_PATTERN
from api.schemas.text import Instant
from application.identity.model import NAME_PATTERN, Role

_DEVICE = Field(default=None, pattern=DEVICE_PATTERN, max_length=200, examples=[
    "sip:sam@10.0.0.7:5060"], description="The person's own phone (a SIP URI): what a "
    "supervisor's monitor, whisper or barge rings.")
_AGENT = Field(default=None, pattern=KEY_PATTERN, examples=["alice"], description="The key of "
               "the agent (in the same tenant) this person is: a user of role agent reads and "
               "acts on that agent only.")


class TokenPublic(BaseModel):
    """An OAuth 2.0 token response (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds the access token stays valid.")
    refresh_token: str = Field(description="Use once with POST /v1/auth/refresh.")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserCreate(BaseModel):
    username: str = Field(pattern=NAME_PATTERN)
    role: Role
    password: str = Field(min_length=12, max_length=200)
    device: str | None = _DEVICE
    agent: str | None = _AGENT


class UserPublic(BaseModel):
    id: UUID
    tenant: str
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    device: str | None
    agent: str | None


class DeviceSet(BaseModel):
    device: str | None = _DEVICE


class AgentSet(BaseModel):
    agent: str | None = _AGENT


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class KeyCreate(BaseModel):
    account: str = Field(pattern=NAME_PATTERN, description="Service account; made if new.")
    role: Role = Role.INTEGRATOR
    # Instant: an RFC 3339 string with an offset; a number is not read as Unix time.
    expires_at: Instant | None = Field(default=None, description="No expiry when unset.")


class KeyPublic(BaseModel):
    key_id: str
    account: str
    tenant: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class KeyCreated(BaseModel):
    key_id: str
    key: str = Field(description="The secret: shown this once, stored only as a hash.")
    account: str
    role: Role
    expires_at: datetime | None


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int
