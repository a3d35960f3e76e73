"""The folded view of one queue, advanced one Queue event at a time (pure, no I/O).

Settings, members, the calls in the queue in service order (the domain's own
ordering rule, ``domain.queue_values``: priority, then arrival; a requeued
call goes back to the place its event recorded, ``put_back``) and the tally
(``QueueTally``: the same accounting as the aggregate), plus the wait totals
that ASA and the average abandon time need:

- ASA (average speed of answer) = answered_wait_total_s / answered
- average time to abandon = abandoned_wait_total_s / abandoned

and ``short_abandoned``: the abandons sooner than the queue's short-abandon
threshold as it stood at the event (the visits' ``short_abandoned`` outcome,
projections/queue_visits.py), which the service level leaves out: answered
within T / (offered - short_abandoned). ``abandoned_within_sl`` is another
figure: abandoned with a wait of at most T.

A call's ``rung`` is folded but not stored (queue_calls has no column for it):
only the aggregate's requeue decision reads it, and the event carries the place
that decision gave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.addressing import DEFAULT_TENANT
from domain.queue import DEFAULT_SHORT_ABANDON_S
from domain.queue_values import QueuedCall, QueueMember, QueueTally, place, put_back
from projections.envelope import EventEnvelope, tenant_of, uuid_of, uuid_or_none

SCALARS = ("queue_id", "key", "name", "strategy", "service_level_s", "max_wait_s",
           "overflow_kind", "overflow_value", "wrap_up_s", "offer_timeout_s", "music_on_hold",
           "announce_position", "required_skills", "tenant", "short_abandon_s", "record_calls")
TALLY = tuple(f.name for f in dataclasses.fields(QueueTally))
TOTALS = ("answered_wait_total_s", "abandoned_wait_total_s", "short_abandoned", "created_at",
          "last_version", "last_position")
COLUMNS = (*SCALARS, *TALLY, *TOTALS)


@dataclass
class QueueView:
    queue_id: UUID
    key: str
    name: str
    strategy: str
    service_level_s: float
    wrap_up_s: float
    offer_timeout_s: float
    music_on_hold: str
    announce_position: bool
    created_at: datetime
    tenant: str = DEFAULT_TENANT
    short_abandon_s: float = DEFAULT_SHORT_ABANDON_S
    record_calls: bool = False
    max_wait_s: float | None = None
    overflow_kind: str | None = None
    overflow_value: str | None = None
    required_skills: dict[str, int] = field(default_factory=dict)
    tally: QueueTally = field(default_factory=QueueTally)
    answered_wait_total_s: float = 0.0
    abandoned_wait_total_s: float = 0.0
    short_abandoned: int = 0
    members: dict[UUID, QueueMember] = field(default_factory=dict)
    calls: list[QueuedCall] = field(default_factory=list)
    last_version: int = 1
    last_position: int = 0

    def as_row(self) -> tuple[Any, ...]:
        """The queue_live row, in COLUMNS order."""
        values = {**vars(self), **dataclasses.asdict(self.tally)}
        return tuple(values[name] for name in COLUMNS)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], members: dict[UUID, QueueMember],
                 calls: list[QueuedCall]) -> QueueView:
        own = {k: v for k, v in row.items() if k not in TALLY}
        tally = QueueTally(**{k: row[k] for k in TALLY})
        return cls(**own, tally=tally, members=members, calls=calls)

    def remove_call(self, call_id: UUID) -> QueuedCall | None:
        found = next((c for c in self.calls if c.call_id == call_id), None)
        self.calls = [c for c in self.calls if c.call_id != call_id]
        return found


def start(envelope: EventEnvelope) -> QueueView:
    """The view created by Queue.Created."""
    data = envelope.data
    return QueueView(
        queue_id=envelope.subject, key=str(data["key"]), name=str(data["name"]),
        strategy=str(data["strategy"]), service_level_s=float(data["service_level_s"]),
        wrap_up_s=float(data["wrap_up_s"]), offer_timeout_s=float(data["offer_timeout_s"]),
        music_on_hold=str(data["music_on_hold"]),
        announce_position=bool(data["announce_position"]), created_at=envelope.occurred_at,
        tenant=tenant_of(data),
        last_version=envelope.version, last_position=envelope.position,
    )


def advance(view: QueueView, envelope: EventEnvelope) -> QueueView:
    """Apply the queue's next event (its version must be view.last_version + 1)."""
    handler = _HANDLERS.get(envelope.name)
    if handler is not None:
        handler(view, envelope, envelope.data)
    view.last_version = envelope.version  # unknown (newer) events never stall the view
    view.last_position = envelope.position
    return view


Data = Mapping[str, Any]
Handler = Callable[[QueueView, EventEnvelope, Data], None]


def _setting(name: str) -> Handler:
    def handler(view: QueueView, _: EventEnvelope, data: Data) -> None:
        setattr(view, name, data[name])
    return handler


def _overflow_set(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.max_wait_s = float(data["max_wait_s"])
    view.overflow_kind, view.overflow_value = data["target_kind"], data.get("target_value")


def _overflow_cleared(view: QueueView, _: EventEnvelope, __: Data) -> None:
    view.max_wait_s = view.overflow_kind = view.overflow_value = None


def _member_set(view: QueueView, _: EventEnvelope, data: Data) -> None:
    agent_id = uuid_of(data["agent_id"])
    member = view.members.get(agent_id, QueueMember(int(data["penalty"])))
    view.members[agent_id] = replace(member, penalty=int(data["penalty"]))


def _member_removed(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.members.pop(uuid_of(data["agent_id"]), None)


def _skill_required(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.required_skills[str(data["skill"])] = int(data["min_level"])


def _skill_dropped(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.required_skills.pop(str(data["skill"]), None)


def _enqueued(view: QueueView, envelope: EventEnvelope, data: Data) -> None:
    source = data.get("transferred_from")
    call = QueuedCall(uuid_of(data["call_id"]), int(data["priority"]), envelope.occurred_at,
                      uuid_or_none(source))
    view.calls = place(view.calls, call, at_head=False)
    view.tally.offered += 1
    view.tally.transferred_in += source is not None


def _offered(view: QueueView, _: EventEnvelope, data: Data) -> None:
    call_id, agent_id = uuid_of(data["call_id"]), uuid_of(data["agent_id"])
    view.calls = [replace(c, offered_to=(*c.offered_to, agent_id), rung=True)
                  if c.call_id == call_id else c for c in view.calls]
    view.tally.agent_offers += 1
    if agent_id in view.members:
        view.members[agent_id] = replace(view.members[agent_id],
                                         last_offered=view.tally.agent_offers)


def _offer_missed(view: QueueView, _: EventEnvelope, data: Data) -> None:
    call_id, agent_id = uuid_of(data["call_id"]), uuid_of(data["agent_id"])
    view.calls = [replace(c, offered_to=tuple(a for a in c.offered_to if a != agent_id))
                  if c.call_id == call_id else c for c in view.calls]


def _requeued(view: QueueView, _: EventEnvelope, data: Data) -> None:
    call = view.remove_call(uuid_of(data["call_id"]))
    if call is not None:
        position = data.get("position")
        view.calls = put_back(view.calls, replace(call, offered_to=()),
                              None if position is None else int(position))
    view.tally.requeued += 1


def _answered(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.remove_call(uuid_of(data["call_id"]))
    view.tally.answered += 1
    view.tally.answered_within_sl += data["wait_s"] <= data["service_level_s"]
    view.answered_wait_total_s += float(data["wait_s"])


def _abandoned(view: QueueView, _: EventEnvelope, data: Data) -> None:
    view.remove_call(uuid_of(data["call_id"]))
    view.tally.abandoned += 1
    view.tally.abandoned_within_sl += data["wait_s"] <= data["service_level_s"]
    view.abandoned_wait_total_s += float(data["wait_s"])
    # The setting in force: this event does not change it (queue_visits.queue_changes).
    view.short_abandoned += float(data["wait_s"]) < view.short_abandon_s


def _left(counter: str) -> Handler:
    def handler(view: QueueView, _: EventEnvelope, data: Data) -> None:
        view.remove_call(uuid_of(data["call_id"]))
        setattr(view.tally, counter, getattr(view.tally, counter) + 1)
    return handler


_HANDLERS: dict[str, Handler] = {
    "strategy_changed": _setting("strategy"),
    "service_level_changed": _setting("service_level_s"),
    "wrap_up_changed": _setting("wrap_up_s"),
    "short_abandon_changed": _setting("short_abandon_s"),
    "offer_timeout_changed": _setting("offer_timeout_s"),
    "music_on_hold_changed": _setting("music_on_hold"),
    "position_announcements_changed": _setting("announce_position"),
    "recording_policy_changed": _setting("record_calls"),
    "overflow_set": _overflow_set,
    "overflow_cleared": _overflow_cleared,
    "member_added": _member_set,
    "member_changed": _member_set,
    "member_removed": _member_removed,
    "skill_required": _skill_required,
    "skill_requirement_dropped": _skill_dropped,
    "call_enqueued": _enqueued,
    "call_offered": _offered,
    "call_offer_missed": _offer_missed,
    "call_requeued": _requeued,
    "call_answered": _answered,
    "call_abandoned": _abandoned,
    "call_overflowed": _left("overflowed"),
    "call_transferred_out": _left("transferred_out"),
}
