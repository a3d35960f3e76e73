"""The slow reference: every figure computed straight from the raw Queue and Agent
events, without the projection's facts or projections/kpi.py's sums. The
property tests compare the fast path (facts folded by projections/queue_visits,
sums and formulas of projections/kpi) with this, figure by figure.

Written from the definitions in docs/metrics.md, not from the fast path's code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.envelope import EventEnvelope

DEFAULT_SHORT_ABANDON_S = 5.0
LEAVING = ("call_answered", "call_abandoned", "call_overflowed", "call_transferred_out")
# Agent events that start a new state period (domain/agent.py).
STATE_EVENTS = ("logged_in", "logged_out", "paused", "resumed", "reserved", "offer_accepted",
                "offer_missed", "offer_cancelled", "call_ended", "wrap_up_finished")


def _in(at: datetime, since: datetime, until: datetime) -> bool:
    return since <= at < until


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _by_subject(events: Sequence[EventEnvelope], kind: str) -> dict[UUID, list[EventEnvelope]]:
    found: dict[UUID, list[EventEnvelope]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.subject, e.version)):
        if e.kind == kind:
            found[e.subject].append(e)
    return found


def _handlings(events: Sequence[EventEnvelope]) -> list[dict[str, Any]]:
    """Each call an agent took: accepted, ended, after-call work ended (or None)."""
    found = []
    for agent_id, history in _by_subject(events, "agent").items():
        queue_of: dict[str, Any] = {}
        for n, e in enumerate(history):
            if e.name == "reserved":
                queue_of[e.data["call_id"]] = e.data.get("queue_id")
            if e.name != "offer_accepted":
                continue
            call = e.data["call_id"]
            item = {"agent": agent_id, "queue": queue_of.get(call), "accepted": e.occurred_at,
                    "ended": None, "done": None}
            later = history[n + 1:]
            end = next((x for x in later if x.name == "call_ended"
                        and x.data["call_id"] == call), None)
            if end is not None:
                item["ended"] = end.occurred_at
                if end.data.get("wrap_up_until") is None:
                    item["done"] = end.occurred_at
                else:
                    after = later[later.index(end) + 1:]
                    nxt = next((x for x in after if x.name in STATE_EVENTS), None)
                    item["done"] = None if nxt is None else nxt.occurred_at
            found.append(item)
    return found


def queue_figures(events: Sequence[EventEnvelope], since: datetime, until: datetime,
                  queue_id: UUID | None) -> dict[str, Any]:
    """One queue's figures (every queue's together when ``queue_id`` is None)."""
    c: dict[str, Any] = defaultdict(int)
    c["answered_wait_s"] = 0.0
    longest: float | None = None
    for subject, history in _by_subject(events, "queue").items():
        if queue_id is not None and subject != queue_id:
            continue
        threshold = DEFAULT_SHORT_ABANDON_S
        for n, e in enumerate(history):
            if e.name == "short_abandon_changed":
                threshold = float(e.data["short_abandon_s"])
            if e.name == "call_enqueued":
                if _in(e.occurred_at, since, until):
                    c["offered"] += 1
                    c["transferred_in"] += e.data.get("transferred_from") is not None
                left = next((x for x in history[n + 1:] if x.name in LEAVING
                             and x.data["call_id"] == e.data["call_id"]), None)
                if e.occurred_at < until and (left is None or left.occurred_at >= since):
                    wait = (float(left.data["wait_s"]) if left is not None
                            and left.occurred_at < until
                            else (until - e.occurred_at).total_seconds())
                    longest = wait if longest is None else max(longest, wait)
            if e.name not in LEAVING or not _in(e.occurred_at, since, until):
                continue
            wait = float(e.data["wait_s"])
            if e.name == "call_answered":
                c["answered"] += 1
                c["answered_within_sl"] += wait <= float(e.data["service_level_s"])
                c["answered_wait_s"] += wait
            elif e.name == "call_abandoned":
                c["short_abandoned" if wait < threshold else "abandoned"] += 1
            else:
                c[e.name.removeprefix("call_")] += 1
    handled = [h for h in _handlings(events) if h["done"] is not None
               and _in(h["done"], since, until)
               and (h["queue"] is not None if queue_id is None else h["queue"] == str(queue_id))]
    handle_s = sum((h["done"] - h["accepted"]).total_seconds() for h in handled)
    counted = c["offered"] - c["short_abandoned"]
    return {
        "since": since, "until": until,
        **{k: c[k] for k in ("offered", "answered", "answered_within_sl", "abandoned",
                             "short_abandoned", "transferred_in", "transferred_out",
                             "overflowed")},
        "service_level": _div(c["answered_within_sl"], counted),
        "asa_s": _div(c["answered_wait_s"], c["answered"]),
        "aht_s": _div(handle_s, len(handled)),
        "longest_wait_s": longest,
        "abandonment_rate": _div(c["abandoned"], counted),
    }


def agent_figures(events: Sequence[EventEnvelope], agent_id: UUID, since: datetime,
                  until: datetime) -> dict[str, Any]:
    """One agent's handled calls, AHT, occupancy and missed offers over the window."""
    history = _by_subject(events, "agent").get(agent_id, [])
    starts = [(e.occurred_at, _state_after(e)) for e in history
              if e.version == 1 or e.name in STATE_EVENTS]
    time: dict[str, float] = defaultdict(float)
    for n, (start, state) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else until
        overlap = (min(end, until) - max(start, since)).total_seconds()
        time[state] += max(0.0, overlap)
    staffed = sum(v for k, v in time.items() if k != "logged_out")
    handled = [h for h in _handlings(events) if h["agent"] == agent_id
               and h["done"] is not None and _in(h["done"], since, until)]
    return {
        "handled": len(handled),
        "aht_s": _div(sum((h["done"] - h["accepted"]).total_seconds() for h in handled),
                      len(handled)),
        "occupancy": _div(time["on_call"] + time["wrap_up"], staffed - time["paused"]),
        "missed_offers": sum(1 for e in history if e.name == "offer_missed"
                             and _in(e.occurred_at, since, until)),
    }


def _state_after(e: EventEnvelope) -> str:
    if e.version == 1:
        return "logged_out"
    if e.name == "offer_missed":
        return "paused" if e.data.get("auto_paused") else "available"
    if e.name == "call_ended":
        return "available" if e.data.get("wrap_up_until") is None else "wrap_up"
    return {"logged_in": "available", "logged_out": "logged_out", "paused": "paused",
            "resumed": "available", "reserved": "reserved", "offer_accepted": "on_call",
            "offer_cancelled": "available", "wrap_up_finished": "available"}[e.name]
