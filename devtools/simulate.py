"""Synthetic call traffic through the real application service.

Used by benchmarks and tests that need many realistic calls without SIP:
each lifecycle is the 8 events of an inbound call answered by an agent,
put on hold once, blind-transferred and hung up by the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.calls import CallService
from domain.call import Direction, Disposition, HangupSide, TransferKind

EVENTS_PER_LIFECYCLE = 8


def full_lifecycle(service: CallService, sip_call_id: str,
                   start: datetime | None = None) -> UUID:
    """Run one complete call (8 events); inside `service.batch()` they share its commit."""
    t0 = start or datetime.now(UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    call_id = service.initiate_call(caller="+15550100", callee="+15550199",
                                    direction=Direction.INBOUND, trunk="pstn-1",
                                    sip_call_id=sip_call_id, occurred_at=at(0))
    service.route_call(call_id, "sip:agent-7@agents.local", at(0.2))
    service.ring_call(call_id, at(0.3))
    service.answer_call(call_id, at(4))
    service.hold_call(call_id, at(30))
    service.resume_call(call_id, at(45))
    service.transfer_call(call_id, TransferKind.BLIND, "sip:agent-9@agents.local", at(90))
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                     hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=at(120))
    return call_id


def lifecycles(service: CallService, count: int, prefix: str, batch: int = 50) -> list[UUID]:
    """`count` complete calls, committed `batch` calls per transaction."""
    ids: list[UUID] = []
    for first in range(0, count, batch):
        with service.batch():
            ids += [full_lifecycle(service, f"{prefix}-{n}@sim")
                    for n in range(first, min(first + batch, count))]
    return ids
