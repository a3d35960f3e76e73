"""The calls projection: each call's view (CallView) folded from its Call events, one
version at a time, and written as its CDR row; a page of events per transaction.

A page is applied with its position in one transaction, and a view advances only by
its next version: a duplicate changes nothing; an event ahead of a missing one waits
in call_events until the gap is filled. The in-process runner and the Faust worker call
apply_batch; the rebuild folds history through the same pure start/advance in memory.

CDR definitions (DESIGN.md "CDR fields"), all in seconds:
- wait: from entering the queue (or, if never queued, from the start of the call)
  until answered, or until the end for calls never answered;
- hold: the sum of all hold periods, an open hold closing at the end;
- talk: from answer to end, minus hold;
- final callee: the last routing or transfer target.

The row is the whole folded CallView, so it is also the state the live projection
advances; `last_version` makes every write idempotent.

`wrap_up_s` is the exception: the agents' after-call work follows the call's end and
is a fact of the call-centre log (queue_handling, written by the call-centre group from
the Agent events), not of the call's. This group never overwrites it; `fill_wrap_up`
copies it from queue_handling, run by both groups (here for the calls this batch wrote,
there when a wrap-up ends), so whichever commits second finds the other's row. A call
several agents handled (a transfer) has the sum of their wrap-ups.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor, sql
from psycopg.rows import TupleRow, dict_row
from psycopg.types.json import Jsonb

from domain.addressing import DEFAULT_TENANT
from projections import call_events, call_live, interval_buckets, positions
from projections.envelope import EventEnvelope, tenant_of
from projections.registry import ProjectionGroup
from projections.staging import copy_merge

KIND = "call"
CDR = "cdr"  # the table this module writes; call_events and call_live have their own modules
NAMES = (call_events.NAME, CDR, call_live.NAME)


@dataclass
class CallView:
    call_id: UUID
    started_at: datetime
    direction: str
    caller: str
    callee: str
    sip_call_id: str
    trunk: str | None = None
    tenant: str = DEFAULT_TENANT
    status: str = "initiated"
    final_callee: str | None = None
    queue: str | None = None
    agents: list[str] = field(default_factory=list)
    queued_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    hold_s: float = 0.0
    hold_count: int = 0
    hold_started_at: datetime | None = None
    wrap_up_s: float | None = None
    disposition: str | None = None
    hangup_cause: str | None = None
    hangup_side: str | None = None
    sip_status: int | None = None
    transfers: list[dict[str, Any]] = field(default_factory=list)
    recording_ref: str | None = None
    mos: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    rtt_ms: float | None = None
    last_version: int = 1
    last_position: int = 0

    @property
    def is_final(self) -> bool:
        return self.ended_at is not None

    def as_row(self) -> tuple[Any, ...]:
        # Not dataclasses.astuple: it deep-copies every value, and this runs
        # for every changed call in every batch.
        return tuple(getattr(self, name) for name in COLUMNS)


COLUMNS = tuple(f.name for f in dataclasses.fields(CallView))  # the cdr table's, in order


# --- the fold: a call's view advanced by its next event ---------------------------------

def start(envelope: EventEnvelope) -> CallView:
    """The view created by a call's first event (Call.Initiated)."""
    data = envelope.data
    return CallView(
        call_id=envelope.subject, started_at=envelope.occurred_at,
        direction=str(data["direction"]), caller=str(data["caller"]),
        callee=str(data["callee"]), sip_call_id=str(data["sip_call_id"]),
        trunk=data.get("trunk"), tenant=tenant_of(data),
        last_version=envelope.version, last_position=envelope.position,
    )


def advance(view: CallView, envelope: EventEnvelope) -> CallView:
    """Apply the call's next event (its version must be view.last_version + 1)."""
    handler = _HANDLERS.get(envelope.name)
    if handler is not None:
        handler(view, envelope)
    # Unknown event types (newer producers) still advance the version, so a
    # view never stalls behind an event this code does not interpret.
    view.last_version = envelope.version
    view.last_position = envelope.position
    return view


def fold(envelopes: Iterable[EventEnvelope]) -> CallView | None:
    """The view after a call's events in version order (None if it has not started)."""
    view: CallView | None = None
    for envelope in envelopes:
        view = start(envelope) if view is None else advance(view, envelope)
    return view


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def _routed(view: CallView, envelope: EventEnvelope) -> None:
    view.status = "routed"
    view.final_callee = str(envelope.data["target"])


def _ringing(view: CallView, envelope: EventEnvelope) -> None:
    view.status = "ringing"
    if view.ringing_at is None:
        view.ringing_at = envelope.occurred_at


def _answered(view: CallView, envelope: EventEnvelope) -> None:
    view.status = "answered"
    view.answered_at = envelope.occurred_at


def _held(view: CallView, envelope: EventEnvelope) -> None:
    view.status = "held"
    view.hold_started_at = envelope.occurred_at
    view.hold_count += 1


def _close_hold(view: CallView, at: datetime) -> None:
    if view.hold_started_at is not None:
        view.hold_s += _seconds(at, view.hold_started_at)
        view.hold_started_at = None


def _resumed(view: CallView, envelope: EventEnvelope) -> None:
    _close_hold(view, envelope.occurred_at)
    view.status = "answered"


def _transferred(view: CallView, envelope: EventEnvelope) -> None:
    target = str(envelope.data["target"])
    view.transfers.append(
        {"kind": envelope.data["kind"], "target": target, "at": envelope.occurred_at.isoformat()}
    )
    view.final_callee = target


def _ended(view: CallView, envelope: EventEnvelope) -> None:
    end = envelope.occurred_at
    _close_hold(view, end)
    data = envelope.data
    view.status = "ended"
    view.ended_at = end
    view.disposition = str(data["disposition"])
    view.hangup_cause = data.get("hangup_cause")
    view.hangup_side = data.get("hangup_side")
    view.sip_status = data.get("sip_status")
    waited_from = view.queued_at or view.started_at
    view.wait_s = _seconds(view.answered_at or end, waited_from)
    if view.answered_at is not None:
        view.talk_s = max(0.0, _seconds(end, view.answered_at) - view.hold_s)


def _media_quality_recorded(view: CallView, envelope: EventEnvelope) -> None:
    data = envelope.data
    view.mos = data.get("mos")
    view.jitter_ms = data.get("jitter_ms")
    view.loss_pct = data.get("loss_pct")
    view.rtt_ms = data.get("rtt_ms")


def _queued(view: CallView, envelope: EventEnvelope) -> None:
    view.queue = str(envelope.data["queue"])
    if view.queued_at is None:
        view.queued_at = envelope.occurred_at


def _agent_connected(view: CallView, envelope: EventEnvelope) -> None:
    view.agents = [*view.agents, str(envelope.data["agent"])]


def _recording_available(view: CallView, envelope: EventEnvelope) -> None:
    view.recording_ref = str(envelope.data["ref"])


def _recording_stored(view: CallView, envelope: EventEnvelope) -> None:
    """Uploaded: the local file is removed, the object is where the recording is now."""
    view.recording_ref = f"s3://{envelope.data['bucket']}/{envelope.data['key']}"


def _recording_deleted(view: CallView, _: EventEnvelope) -> None:
    view.recording_ref = None


_HANDLERS: dict[str, Callable[[CallView, EventEnvelope], None]] = {
    "queued": _queued, "agent_connected": _agent_connected,
    "recording_available": _recording_available, "recording_stored": _recording_stored,
    "recording_deleted": _recording_deleted, "routed": _routed, "ringing": _ringing,
    "answered": _answered, "held": _held, "resumed": _resumed, "transferred": _transferred,
    "ended": _ended, "media_quality_recorded": _media_quality_recorded,
}


# --- the cdr table: the views as rows ---------------------------------------------------

_KEY = ("call_id", "started_at")
_OTHER_WRITER = ("wrap_up_s",)  # see the module docstring
_ON_CONFLICT = sql.SQL(
    "ON CONFLICT (call_id, started_at) DO UPDATE SET {}"
    " WHERE t.last_version < EXCLUDED.last_version"
).format(sql.SQL(", ").join(
    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COLUMNS
    if c not in _KEY + _OTHER_WRITER
))
_SELECT = sql.SQL("SELECT {cols} FROM cdr WHERE call_id = ANY(%s)").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)
_FILL_WRAP_UP = """
UPDATE cdr SET wrap_up_s = h.wrap_up_s
FROM (SELECT call_id, sum(wrap_up_s) AS wrap_up_s FROM queue_handling
      WHERE call_id = ANY(%s) AND wrap_up_s IS NOT NULL GROUP BY call_id) h
WHERE cdr.call_id = h.call_id AND cdr.wrap_up_s IS DISTINCT FROM h.wrap_up_s
"""
_FILL_ALL_WRAP_UPS = _FILL_WRAP_UP.replace("call_id = ANY(%s) AND ", "")


def db_row(view: CallView) -> tuple[object, ...]:
    row = list(view.as_row())
    row[COLUMNS.index("transfers")] = Jsonb(view.transfers)
    return tuple(row)


def load(cur: Cursor[TupleRow], call_ids: Collection[object]) -> dict[object, CallView]:
    with cur.connection.cursor(row_factory=dict_row) as dict_cur:
        dict_cur.execute(_SELECT, (list(call_ids),))
        return {row["call_id"]: CallView(**row) for row in dict_cur.fetchall()}


def upsert(cur: Cursor[TupleRow], views: Iterable[CallView]) -> None:
    """Write the views; a row never moves back to an older version."""
    views_ = list(views)
    copy_merge(cur, CDR, COLUMNS, (db_row(v) for v in views_), _ON_CONFLICT)
    fill_wrap_up(cur, [v.call_id for v in views_ if v.is_final])


def fill_wrap_up(cur: Cursor[TupleRow], call_ids: Collection[object] | None) -> None:
    """Copy the calls' wrap-up from queue_handling (every call's if None)."""
    if call_ids is None:
        cur.execute(_FILL_ALL_WRAP_UPS)
    elif call_ids:
        cur.execute(_FILL_WRAP_UP, (list(call_ids),))


# --- a page applied: the views moved on, in one transaction with the position ------------

def apply_batch(conn: Connection[TupleRow], envelopes: Sequence[EventEnvelope], source: str) -> int:
    """Apply the batch; return how many calls' views moved on."""
    if not conn.autocommit:
        # Otherwise conn.transaction() would only be a savepoint inside an
        # implicit transaction, and nothing would be committed batch by batch.
        raise ValueError("apply_batch needs an autocommit connection")
    calls = [e for e in envelopes if e.kind == KIND]
    with conn.transaction(), conn.cursor() as cur:
        changed: list[CallView] = []
        if calls:
            views = load(cur, {e.subject for e in calls})
            call_events.insert(cur, calls, _tenants(calls, views))
            changed = _advance_views(cur, calls, views)
            # A call's first event in this batch, after some of its later ones:
            # those were stored before its tenant was known.
            late = {v.call_id: v.tenant for v in changed
                    if v.call_id not in views and v.tenant != DEFAULT_TENANT}
            call_events.retag(cur, late)
            upsert(cur, changed)
            call_live.sync(cur, changed)
            mark_held_handlings(cur, calls)
        if envelopes:
            positions.record(cur, NAMES, source, max(e.position for e in envelopes))
    return len(changed)


GROUP = ProjectionGroup(names=NAMES, kinds=frozenset({KIND}), apply=apply_batch)

# The events that start or end a hold: HANDLE_SPLIT (projections/kpi_sql.py) reads them
# from call_events to split a handled call's talk from its hold.
HOLD_EVENTS = frozenset({"held", "resumed", "ended"})
# By call_id: index queue_handling_call (migration 0017).
_HANDLINGS = """
SELECT tenant, wrap_up_ended_at FROM queue_handling WHERE call_id = ANY(%s)
ORDER BY agent_id, call_id, accepted_at FOR SHARE
"""


def mark_held_handlings(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope]) -> int:
    """Mark dirty the interval bucket of each handling (queue_handling, the call-centre
    group's) already bucketed whose call this batch holds, resumes or ends, so the
    refresher recomputes its hold; return how many buckets.

    A handling bucketed later is computed then, with these events in call_events. The
    rows are locked FOR SHARE (all of the call's, filtered after the lock): a wrap-up
    ending concurrently either commits first (the lock waits for it and reads its
    wrap_up_ended_at: we mark) or waits for this commit (its own mark follows ours, and
    the refresh it brings reads our events): neither group's events are left out."""
    call_ids = sorted({e.subject for e in envelopes if e.name in HOLD_EVENTS})
    if not call_ids:
        return 0
    rows = cur.execute(_HANDLINGS, (call_ids,)).fetchall()
    bucketed = [(tenant, ended) for tenant, ended in rows if ended is not None]
    if not bucketed:  # no agent handled these calls, or none has finished its wrap-up
        return 0
    touched = interval_buckets.TouchedBuckets()
    for tenant, wrap_up_ended_at in bucketed:
        touched.add(tenant, wrap_up_ended_at)
    return interval_buckets.mark(cur, touched)


def _tenants(envelopes: Iterable[EventEnvelope],
             views: Mapping[object, CallView]) -> dict[UUID, str]:
    """Each call's tenant, where known: from its stored view or its first event."""
    known = {e.subject: tenant_of(e.data) for e in envelopes if e.version == 1}
    known.update({v.call_id: v.tenant for v in views.values()})
    return known


def _advance_views(cur: Cursor[TupleRow], envelopes: Iterable[EventEnvelope],
                   views: Mapping[object, CallView]) -> list[CallView]:
    by_call: dict[UUID, list[EventEnvelope]] = defaultdict(list)
    for envelope in envelopes:
        by_call[envelope.subject].append(envelope)
    views = dict(views)
    gaps = call_events.calls_with_gaps(cur, by_call.keys())
    changed, still_gapped = [], []
    for call_id, batch in by_call.items():
        view = views.get(call_id)
        before = view.last_version if view else 0
        view, complete = _advance(cur, view, call_id, sorted(batch, key=lambda e: e.version),
                                  had_gap=call_id in gaps)
        if view is not None and view.last_version > before:
            changed.append(view)
        if not complete:
            still_gapped.append(call_id)
    call_events.record_gaps(cur, known=gaps & by_call.keys(), gapped=still_gapped)
    return changed


def _advance(cur: Cursor[TupleRow], view: CallView | None, call_id: UUID,
             batch: list[EventEnvelope], *, had_gap: bool) -> tuple[CallView | None, bool]:
    """Fold what can be folded; say whether no later event is left waiting."""
    expected = view.last_version + 1 if view else 1
    pending = [e for e in batch if e.version >= expected]
    if had_gap or not _contiguous_from(pending, expected):
        # Events after a gap wait in call_events (this batch's are inserted
        # already): fold from there, in version order.
        pending = list(call_events.since_version(cur, call_id, expected))
    for envelope in pending:
        if envelope.version != expected:
            return view, False  # still missing an earlier event: the rest waits
        view = start(envelope) if view is None else advance(view, envelope)
        expected += 1
    return view, True


def _contiguous_from(envelopes: Sequence[EventEnvelope], first: int) -> bool:
    return all(e.version == first + i for i, e in enumerate(envelopes))
