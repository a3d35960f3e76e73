"""The folded view of one agent, advanced one Agent event at a time (pure, no I/O).

It mirrors domain/agent.py's state machine from the published envelopes
(``dialtone.agent.*.v1``), as any Kafka consumer would, so the projection
needs no domain classes. Each event that starts a state (even the same state
with a new pause reason) starts a new state period: ``state_version`` is the
version of that event, and agent_state_intervals keys its rows on it.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.addressing import DEFAULT_TENANT
from projections.envelope import EventEnvelope, tenant_of, uuid_or_none

AUTO_PAUSE_REASON = "missed-offers"  # domain.agent.AUTO_PAUSE_REASON, as published


@dataclass
class AgentView:
    agent_id: UUID
    key: str
    name: str
    state: str
    state_since: datetime
    state_version: int
    tenant: str = DEFAULT_TENANT
    device_uri: str | None = None
    pause_reason: str | None = None
    current_call_id: UUID | None = None
    current_queue_id: UUID | None = None
    offer_deadline: datetime | None = None
    wrap_up_until: datetime | None = None
    skills: dict[str, int] = field(default_factory=dict)
    auto_pause_after: int | None = None
    missed_offers: int = 0
    calls_handled: int = 0
    last_version: int = 1
    last_position: int = 0

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def as_row(self) -> tuple[Any, ...]:
        return _AS_ROW(self)


# The row's values in column order, the field names looked up once (not per row).
_AS_ROW = operator.attrgetter(*AgentView.columns())


def start(envelope: EventEnvelope) -> AgentView:
    """The view created by Agent.Created (a logged-out agent)."""
    data = envelope.data
    return AgentView(
        agent_id=envelope.subject,
        key=str(data["key"]),
        name=str(data["name"]),
        state="logged_out",
        state_since=envelope.occurred_at,
        state_version=envelope.version,
        tenant=tenant_of(data),
        skills=dict(data.get("skills") or {}),
        auto_pause_after=data.get("auto_pause_after"),
        last_version=envelope.version,
        last_position=envelope.position,
    )


def advance(view: AgentView, envelope: EventEnvelope) -> AgentView:
    """Apply the agent's next event (its version must be view.last_version + 1)."""
    handler = _HANDLERS.get(envelope.name)
    if handler is not None:
        handler(view, envelope, envelope.data)
    # Unknown (newer) events still advance the version, so the view never stalls.
    view.last_version = envelope.version
    view.last_position = envelope.position
    return view


def _enter(view: AgentView, envelope: EventEnvelope, state: str) -> None:
    """Start a new state period; drop what belonged to the one left (as the aggregate does)."""
    view.state = state
    view.state_since = envelope.occurred_at
    view.state_version = envelope.version
    if state not in ("reserved", "on_call"):
        view.current_call_id = None
        view.current_queue_id = None
    if state != "reserved":
        view.offer_deadline = None
    if state != "wrap_up":
        view.wrap_up_until = None
    if state != "paused":
        view.pause_reason = None


def _instant(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


Data = Mapping[str, Any]


def _skill_set(view: AgentView, _: EventEnvelope, data: Data) -> None:
    view.skills[str(data["skill"])] = int(data["level"])


def _skill_removed(view: AgentView, _: EventEnvelope, data: Data) -> None:
    view.skills.pop(str(data["skill"]), None)


def _auto_pause_changed(view: AgentView, _: EventEnvelope, data: Data) -> None:
    view.auto_pause_after = data.get("auto_pause_after")


def _logged_in(view: AgentView, envelope: EventEnvelope, data: Data) -> None:
    _enter(view, envelope, "available")
    view.device_uri = str(data["device_uri"])


def _logged_out(view: AgentView, envelope: EventEnvelope, _: Data) -> None:
    _enter(view, envelope, "logged_out")
    view.device_uri = None


def _paused(view: AgentView, envelope: EventEnvelope, data: Data) -> None:
    _enter(view, envelope, "paused")
    view.pause_reason = str(data["reason"])


def _available(view: AgentView, envelope: EventEnvelope, _: Data) -> None:
    _enter(view, envelope, "available")


def _reserved(view: AgentView, envelope: EventEnvelope, data: Data) -> None:
    _enter(view, envelope, "reserved")
    view.current_call_id = uuid_or_none(data["call_id"])
    view.current_queue_id = uuid_or_none(data.get("queue_id"))
    view.offer_deadline = _instant(data["offer_deadline"])


def _accepted(view: AgentView, envelope: EventEnvelope, _: Data) -> None:
    _enter(view, envelope, "on_call")


def _missed(view: AgentView, envelope: EventEnvelope, data: Data) -> None:
    view.missed_offers += 1
    if data.get("auto_paused"):
        _enter(view, envelope, "paused")
        view.pause_reason = AUTO_PAUSE_REASON
    else:
        _enter(view, envelope, "available")


def _call_ended(view: AgentView, envelope: EventEnvelope, data: Data) -> None:
    view.calls_handled += 1
    until = _instant(data.get("wrap_up_until"))
    if until is None:
        _enter(view, envelope, "available")
        return
    # After-call work belongs to the call just ended and its queue: keep showing them.
    call_id, queue_id = view.current_call_id, view.current_queue_id
    _enter(view, envelope, "wrap_up")
    view.wrap_up_until = until
    view.current_call_id, view.current_queue_id = call_id, queue_id


_HANDLERS: dict[str, Callable[[AgentView, EventEnvelope, Data], None]] = {
    "skill_set": _skill_set,
    "skill_removed": _skill_removed,
    "auto_pause_changed": _auto_pause_changed,
    "logged_in": _logged_in,
    "logged_out": _logged_out,
    "paused": _paused,
    "resumed": _available,
    "reserved": _reserved,
    "offer_accepted": _accepted,
    "offer_missed": _missed,
    "offer_cancelled": _available,
    "call_ended": _call_ended,
    "wrap_up_finished": _available,
}
