"""Interval reports from 15-minute bucket sums (issue 11 §1): the calendar and the adding up.

Pure (no I/O): api/queries/reports.py reads the sums, this module says which
buckets make an hour or a day and how sums of buckets combine, and
projections/kpi.py turns the summed sums into figures. No formula lives here.

* 15-minute buckets are UTC-aligned; hours and days follow the tenant's zone.
  Every IANA offset is a multiple of 15 minutes, so a local hour or day is a
  union of whole UTC 15-minute buckets; a DST day is 23 or 25 hours (found in
  local time, never by adding 24 h).
* Counts and seconds add up. The longest wait is a **max**: over a union of
  windows it is the largest of the windows' longest waits (a call waiting
  across a boundary counts in both, with its wait as of each end). Clipped
  state times add up because the windows do not overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from projections import interval_sql, kpi
from projections.interval_buckets import BUCKET, floor

Interval = Literal["15m", "1h", "1d"]
MAXIMA = interval_sql.MAXIMA  # the stored buckets' and hours' SQL combines them alike
_QUEUE_SUMS = frozenset(f.name for f in fields(kpi.QueueSums))
_AGENT_SUMS = frozenset(f.name for f in fields(kpi.AgentSums))


def _starts_group(bucket: datetime, interval: Interval, zone: ZoneInfo) -> bool:
    """Whether a report bucket of ``interval`` starts with this 15-minute bucket."""
    if interval == "15m":
        return True
    local, before = bucket.astimezone(zone), (bucket - BUCKET).astimezone(zone)
    if interval == "1h":
        return local.minute == 0 or local.hour != before.hour
    return local.date() != before.date()


def buckets(since: datetime, until: datetime, interval: Interval, zone: str) -> list[kpi.Window]:
    """The report buckets covering ``[since, until)``: the first holds ``since``,
    the last holds the instant before ``until``; each is whole. An empty range has none."""
    if since >= until:
        return []
    tz = ZoneInfo(zone)
    start = floor(since)
    while not _starts_group(start, interval, tz):
        start -= BUCKET
    bounds = [start]
    at = start + BUCKET
    while at < until or not _starts_group(at, interval, tz):
        if _starts_group(at, interval, tz):
            bounds.append(at)
        at += BUCKET
    bounds.append(at)
    return [kpi.Window(a, b) for a, b in pairwise(bounds)]


def add(total: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """Sums of two windows that do not overlap, as the sums of their union."""
    for name, value in part.items():
        if name == "states":
            states = total.setdefault("states", {})
            for key, seconds in value.items():
                states[key] = states.get(key, 0.0) + seconds
        elif name in MAXIMA:
            present = [v for v in (total.get(name), value) if v is not None]
            total[name] = max(present, default=None)
        else:
            total[name] = total.get(name, 0) + value
    return total


def queue_figures(sums: Mapping[str, Any], window: kpi.Window) -> dict[str, Any]:
    """kpi's queue figures of summed sums, with the handle time's parts."""
    qs = kpi.QueueSums(**{k: v for k, v in sums.items() if k in _QUEUE_SUMS})
    figures = kpi.queue_figures(qs, window)
    figures.update(talk_s=sums.get("talk_s", 0.0), hold_s=sums.get("hold_s", 0.0),
                   wrap_up_s=sums.get("after_call_s", 0.0))
    return figures


def agent_figures(sums: Mapping[str, Any], window: kpi.Window) -> dict[str, Any]:
    """kpi's agent figures of summed sums, time by state and by pause reason."""
    a = kpi.AgentSums(**{k: v for k, v in sums.items() if k in _AGENT_SUMS})
    states: Mapping[tuple[str, str], float] = sums.get("states", {})
    by_state: dict[str, float] = {}
    by_reason: dict[str, float] = {}
    for (state, reason), seconds in sorted(states.items()):
        by_state[state] = by_state.get(state, 0.0) + seconds
        if state == "paused":
            by_reason[reason] = by_reason.get(reason, 0.0) + seconds
    return {"since": window.since, "until": window.until, "handled": a.handled,
            "talk_s": sums.get("talk_s", 0.0), "hold_s": sums.get("hold_s", 0.0),
            "wrap_up_s": sums.get("after_call_s", 0.0), "aht_s": kpi.agent_aht(a),
            "missed_offers": a.missed_offers, "occupancy": kpi.occupancy(a),
            "staffed_s": a.staffed_s, "paused_s": a.paused_s, "on_call_s": a.on_call_s,
            "wrap_up_state_s": a.wrap_up_s, "time_by_state": by_state,
            "pause_by_reason": by_reason}


def live_windows(bucket: kpi.Window, computed: set[datetime],
                 now: datetime) -> list[kpi.Window]:
    """The parts of a report bucket read straight from the fact tables, up to now: runs
    of 15-minute buckets never computed (nothing happened in them, but open periods
    and waiting calls go on) and the bucket still running."""
    current, runs, at = floor(now), [], bucket.since
    while at < bucket.until and at < now:
        if at in computed and at < current:
            at += BUCKET
            continue
        start = at
        while at < bucket.until and at < now and (at not in computed or at >= current):
            at += BUCKET
        runs.append(kpi.Window(start, min(at, now)))
    return runs


MAX_RANGE: dict[str, timedelta] = {"15m": timedelta(days=7), "1h": timedelta(days=31),
                                   "1d": timedelta(days=366)}
