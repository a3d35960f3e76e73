"""Bodies of the webhook routes. The signing secret appears in a response once,
in `WebhookCreated` (and only when dialtone made it); never in a list or a get."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

# `dialtone.<kind>.<event>.v<N>`, or `*` for every event type.
EVENT_TYPE_PATTERN = r"^(\*|dialtone\.[a-z_]+\.[a-z_]+\.v[0-9]+)$"
# Standard Webhooks secrets: `whsec_` and the base64 of 24 to 64 random bytes.
SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$"  # noqa: S105 - a pattern, not a secret

MAX_BIGINT = 2**63 - 1  # positions and ids are PostgreSQL bigints

EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN, max_length=100)]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://\S+$")]
_TYPES = Field(min_length=1, max_length=100, examples=[["dialtone.call.ended.v1",
               "dialtone.call.recording_available.v1"]],
               description="Event types to receive (CloudEvents `type`), or `[\"*\"]` for all.")
_SECRET = Field(default=None, pattern=SECRET_PATTERN, description="The shared HMAC secret "
                "(`whsec_` + base64 of 24-64 random bytes). Omit it and dialtone makes one "
                "and shows it once in the answer.")


class WebhookCreate(BaseModel):
    url: Url = Field(examples=["https://hooks.example.com/dialtone"])
    event_types: list[EventType] = _TYPES
    secret: str | None = _SECRET


class WebhookUpdate(BaseModel):
    """Fields to change; absent ones stay."""

    url: Url | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=100)
    secret: str | None = _SECRET


Status = Literal["active", "paused", "disabled"]


class WebhookPublic(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    status: Status
    failing_since: datetime | None = Field(description="Start of the current run of failed "
                                           "attempts (null while deliveries succeed).")
    disabled_reason: str | None
    delivered_position: int = Field(description="Highest event `sequence` delivered.")
    pending: int = Field(description="Deliveries waiting to be sent.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str | None = Field(description="The secret dialtone made (shown this once); null "
                               "when the request gave its own.")


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryAttemptPublic(BaseModel):
    attempt_id: int
    event_id: UUID
    event_type: str
    aggregate_id: UUID
    position: int = Field(description="The event's CloudEvents `sequence`.")
    attempt: int = Field(description="1 for the first try of this delivery, then 2, 3...")
    attempted_at: datetime
    status_code: int | None = Field(description="HTTP status; null when no answer came.")
    error: str | None
    duration_ms: float
    delivered: bool = Field(description="The delivery (not only this attempt) succeeded.")


class DeliveryAttemptsPublic(BaseModel):
    data: list[DeliveryAttemptPublic]
    count: int
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; "
                                    "null on the last page.")


class Redelivery(BaseModel):
    from_position: int = Field(
        ge=0, le=MAX_BIGINT, strict=True, description="Send again every event of this "
        "subscription whose `sequence` is at least this, in order per aggregate.")


class RedeliveryQueued(BaseModel):
    queued: int
