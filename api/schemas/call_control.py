"""Supervision and transfer requests on a live call, and what the API answers."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.targets import StrictBody
from api.schemas.text import Text

DEVICE_PATTERN = r"^sips?:[^\s<>\x00]+$"
SupervisionModeName = Literal["monitor", "whisper", "barge"]


class SupervisionStart(StrictBody):
    """Who supervises is the caller; the device rung is theirs (never named here)."""

    mode: SupervisionModeName = Field(description=(
        "`monitor`: hears both, heard by nobody; `whisper`: heard by the agent only; "
        "`barge`: heard by both."))


class SupervisionPublic(BaseModel):
    call_id: UUID
    supervisor: str
    mode: SupervisionModeName
    state: Literal["calling", "joined"] = Field(description=(
        "`calling`: the device rings; the call records SupervisionStarted when it answers."))
    detail: str


class TransferTarget(StrictBody):
    kind: Literal["queue", "number", "uri"]
    value: Text = Field(min_length=1, max_length=200, examples=["support"], description=(
        "A queue's key or id, a number the worker's dialplan routes, or a SIP URI."))


class TransferStart(StrictBody):
    kind: Literal["blind", "attended"] = Field(default="blind", description=(
        "`blind`: the agent leaves now and the caller goes to the target; `attended`: "
        "the agent talks to the target first (the caller hears music), then completes "
        "or cancels."))
    target: TransferTarget


class TransferPublic(BaseModel):
    call_id: UUID
    state: str = Field(description="`queued`, `calling`, `consulting`, `connected`, `cancelled`.")
    detail: str
