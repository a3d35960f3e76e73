from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from domain.values import CallStatus, Direction, Disposition, HangupSide, TransferKind


class CdrTransfer(BaseModel):
    kind: TransferKind
    target: str
    at: datetime


class CdrPublic(BaseModel):
    """One finished call (a call detail record); durations in seconds.

    The fields are exactly the columns of the `cdr` table, in table order; the
    CSV export uses the same names as its header row.
    """

    call_id: UUID
    started_at: datetime
    tenant: str = Field(description="The tenant the call belongs to (of the number it "
                        "arrived on); always the caller's own: other tenants' CDRs are not listed.")
    direction: Direction
    caller: str
    callee: str = Field(description="The number originally dialled.")
    final_callee: str | None = Field(description="The last routing or transfer target.")
    trunk: str | None
    sip_call_id: str = Field(description="SIP Call-ID of the inbound leg.")
    status: CallStatus
    queue: str | None
    agents: list[str] = Field(description="Agents who handled the call, in order.")
    queued_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime
    wait_s: float | None = Field(
        description="From entering the queue (or the start) until answered, or until the end."
    )
    talk_s: float | None = Field(description="From answer to end, minus hold.")
    hold_s: float = Field(description="Total time on hold.")
    hold_count: int
    hold_started_at: datetime | None
    wrap_up_s: float | None = Field(description="After-call work of the agent.")
    disposition: Disposition | None
    hangup_cause: str | None
    hangup_side: HangupSide | None
    sip_status: int | None = Field(description="Final SIP status code.")
    transfers: list[CdrTransfer]
    recording_ref: str | None
    mos: float | None = Field(description="Estimated mean opinion score (1-5).")
    jitter_ms: float | None
    loss_pct: float | None
    rtt_ms: float | None
    last_version: int = Field(description="Version of the call's last event reflected here.")
    last_position: int = Field(description="Event store position of that event.")


CDR_COLUMNS: tuple[str, ...] = tuple(CdrPublic.model_fields)


class CdrsPublic(BaseModel):
    data: list[CdrPublic]
    count: int = Field(description="Number of records in `data` (this page).")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and range) for the next page; "
        "null on the last page. The `Link: rel=\"next\"` header carries the full URL."
    )
