from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from domain.values import CallStatus, Direction, Disposition


class CallPublic(BaseModel):
    """A call's current state: live while in progress, from its CDR once ended."""

    call_id: UUID
    status: CallStatus
    direction: Direction
    caller: str
    callee: str = Field(description="The number originally dialled.")
    target: str | None = Field(
        description="Where the call is routed now: the last routing or transfer target."
    )
    trunk: str | None
    queue: str | None
    started_at: datetime
    answered_at: datetime | None
    on_hold_since: datetime | None = Field(description="Start of the hold in progress, if any.")
    ended_at: datetime | None = Field(description="Set once the call has ended.")
    disposition: Disposition | None = Field(description="How the call ended, once it has.")
    last_version: int = Field(description="Version of the call's last event reflected here.")
    agents: list[str] = Field(description="Keys of the agents connected to the call so far, "
                              "in order (a transfer to another agent adds one).")


class CallsPublic(BaseModel):
    data: list[CallPublic]
    count: int = Field(description="Number of calls in `data`.")


class CallEventPublic(BaseModel):
    """One event of a call, as published (CloudEvents `type`, store position)."""

    version: int = Field(description="The call's version after this event (1 = first).")
    type: str = Field(examples=["dialtone.call.answered.v1"])
    occurred_at: datetime = Field(description="When the protocol fact happened.")
    position: int = Field(description="Global position in the event store.")
    event_id: UUID
    data: dict[str, Any]
    actor: str | None = Field(default=None, description="The user or API key id whose API "
                              "command caused this event, whether the API stored it or the "
                              "B2BUA worker holding the call did (supervision, transfers); "
                              "null for what SIP or the platform did on its own.")
    actor_kind: str | None = Field(default=None, description="`user` or `key`, with `actor`.")
    request_id: str | None = Field(default=None, description="The request id (`X-Request-ID`) "
                                   "of that command, as in `GET /v1/audit`.")


class CallTimelinePublic(BaseModel):
    call_id: UUID
    events: list[CallEventPublic]
