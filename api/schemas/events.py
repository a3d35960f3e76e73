"""The event history on the wire: an aggregate's timeline and the tenant's event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class EventPublic(BaseModel):
    """One stored event, as published (CloudEvents `type` and `data`), with the
    API command that stored it, if one did."""

    log: str = Field(description="The notification log holding the event: `calls` or "
                     "`callcentre` (each numbers its own positions).")
    position: int = Field(description="The event's position in that log (store order).")
    occurred_at: datetime = Field(description="When the fact happened.")
    kind: str = Field(description="The aggregate's kind: `call`, `agent`, `queue`, `ivrmenu`, "
                      "`number` or `dialplan`.", examples=["agent"])
    aggregate_id: UUID
    version: int = Field(description="The aggregate's version after this event (1 = created).")
    type: str = Field(examples=["dialtone.agent.paused.v1"])
    event_id: UUID
    data: dict[str, Any] = Field(description="The event's fields (never a secret: events "
                                 "carry none).")
    actor: str | None = Field(default=None, description="The user or API key id whose API "
                              "command stored this event; null for events from SIP, the "
                              "router or the platform itself.")
    actor_kind: str | None = Field(default=None, description="`user` or `key`, with `actor`.")
    request_id: str | None = Field(default=None, description="The request id (`X-Request-ID`) "
                                   "of that command, as in `GET /v1/audit`.")


class TimelinePublic(BaseModel):
    """A page of one aggregate's events, in version order."""

    aggregate_id: UUID
    kind: str
    events: list[EventPublic]
    count: int = Field(description="Number of events in `events` (this page).")
    next_after: int | None = Field(description="Pass as `after` for the next page (a version); "
                                   "null on the last page.")


class EventsPublic(BaseModel):
    """A page of the tenant's events in store order."""

    data: list[EventPublic]
    count: int = Field(description="Number of events in `data` (this page).")
    next_after: int | None = Field(description="Pass as `after` for the next page (a position "
                                   "in the same `log`); null on the last page: poll again "
                                   "with the last position seen for newer events.")
