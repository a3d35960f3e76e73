"""Every call-centre figure, defined once: the live view (issue 10), the interval
reports (issue 11) and the tests' reference all use these definitions.

Two halves that must agree:

* the SQL (kpi_sql.py, re-exported here) reads the fact tables (queue_visits, queue_handling,
  agent_state_intervals, callcentre_events) for one window and returns only
  **sums and counts** (never a ratio);
* the Python functions turn those sums into figures (ratios, averages).

So a figure is the same whether its sums came from SQL or from the pure
Python fold the property tests run (``QueueSums.of_visits``). docs/metrics.md
states each formula for a supervisor.

Window membership (half-open ``[since, until)``), for every figure:

* offered, transferred in: the visit *started* in the window (``offered_at``);
* answered, abandoned, short abandons, overflowed, transferred out: the
  visit *ended* in the window (``left_at``), whatever its outcome;
* handled calls and AHT: the agent's *after-call work ended* in the window
  (``wrap_up_ended_at``; with no wrap-up that is when the call ended);
* longest wait: every visit waiting at some instant of the window, with its
  wait as of ``min(left_at, until)``; a call still waiting counts ``until -
  offered_at``, computed at read time, so it grows without any event;
* agent times: agent_state_intervals clipped to the window (an open period
  runs to ``until``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The SQL of the sums over a window lives in kpi_sql.py; callers read it here (kpi.QUEUE_SUMS).
from projections.kpi_sql import (
    AGENT_HANDLED,
    AGENT_MISSED,
    AGENT_STATE_TIMES,
    AGENT_SUMS,
    HANDLE_SPLIT,
    QUEUE_SUMS,
)

__all__ = [
    "AGENT_HANDLED",
    "AGENT_MISSED",
    "AGENT_STATE_TIMES",
    "AGENT_SUMS",
    "DEFAULT_SHORT_ABANDON_S",
    "DEFAULT_WINDOW_S",
    "HANDLE_SPLIT",
    "OUTCOMES",
    "QUEUE_SUMS",
    "AgentSums",
    "HandleSplit",
    "Handling",
    "Period",
    "QueueSums",
    "Visit",
    "Window",
    "abandonment_rate",
    "agent_aht",
    "agent_sums",
    "aht",
    "asa",
    "check_time_zone",
    "clipped_s",
    "handle_split",
    "handle_time",
    "occupancy",
    "queue_figures",
    "ratio",
    "rolling",
    "service_level",
    "state_times",
    "today"
]

DEFAULT_WINDOW_S = 900.0  # the rolling window: 15 minutes
DEFAULT_SHORT_ABANDON_S = 5.0
OUTCOMES = ("answered", "abandoned", "short_abandoned", "overflowed", "transferred_out")


# -- windows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The half-open interval ``[since, until)`` a figure covers."""

    since: datetime
    until: datetime

    def holds(self, instant: datetime | None) -> bool:
        return instant is not None and self.since <= instant < self.until


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA zone zoneinfo knows (``Europe/Brussels``); ValueError if not."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error
    return name


def today(now: datetime, zone: str) -> Window:
    """Since local midnight in ``zone`` up to ``now``. A DST day is 23 or 25 hours:
    midnight is found in local time and converted, never by subtracting 24 h."""
    local = now.astimezone(ZoneInfo(zone))
    # A fresh aware datetime, so midnight gets its own offset (not that of `now`).
    midnight = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(zone))
    return Window(midnight.astimezone(now.tzinfo), now)


def rolling(now: datetime, seconds: float = DEFAULT_WINDOW_S) -> Window:
    """The last ``seconds`` up to ``now``."""
    return Window(now - timedelta(seconds=seconds), now)


# -- queue sums and figures ---------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One row of queue_visits (and its handling), the unit every queue figure counts."""

    queue_id: UUID
    call_id: UUID
    offered_at: datetime
    transferred_in: bool = False
    outcome: str | None = None  # None: still in the queue
    left_at: datetime | None = None
    wait_s: float | None = None
    service_level_s: float | None = None


@dataclass(frozen=True)
class Handling:
    """One row of queue_handling: a call an agent took (talk includes hold). ``hold_s``:
    the time its call was on hold during the handling (from the calls group's
    call_events: HANDLE_SPLIT reads it there; not a column of queue_handling)."""

    agent_id: UUID
    call_id: UUID
    queue_id: UUID | None
    accepted_at: datetime
    ended_at: datetime | None = None
    talk_s: float | None = None
    wrap_up_ended_at: datetime | None = None
    wrap_up_s: float | None = None
    hold_s: float = 0.0


@dataclass(frozen=True)
class QueueSums:
    """What SQL (``QUEUE_SUMS``) returns for one queue, or the tenant, over a window."""

    offered: int = 0
    transferred_in: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    transferred_out: int = 0
    answered_wait_s: float = 0.0
    handled: int = 0
    handle_s: float = 0.0
    longest_wait_s: float | None = None

    def __add__(self, other: QueueSums) -> QueueSums:
        """The sums of two queues together (the tenant summary): counts add up,
        the longest wait is the larger."""
        longest = [w for w in (self.longest_wait_s, other.longest_wait_s) if w is not None]
        added = {f.name: getattr(self, f.name) + getattr(other, f.name)
                 for f in fields(self) if f.name != "longest_wait_s"}
        return QueueSums(**added, longest_wait_s=max(longest, default=None))

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> QueueSums:
        """From a row of ``QUEUE_SUMS`` (NULL counts, from an outer join, are 0)."""
        values = {f.name: row[f.name] for f in fields(cls)}
        return cls(**{k: (v if v is not None or k == "longest_wait_s" else 0)
                      for k, v in values.items()})

    @classmethod
    def of_visits(cls, visits: Iterable[Visit], handled: Iterable[Handling],
                  window: Window) -> QueueSums:
        """The same sums as ``QUEUE_SUMS``, in Python (what the property tests check)."""
        counts = dict.fromkeys(OUTCOMES, 0)
        offered = transferred_in = within = 0
        answered_wait = 0.0
        longest: float | None = None
        for v in visits:
            if window.holds(v.offered_at):
                offered += 1
                transferred_in += v.transferred_in
            if v.outcome is not None and window.holds(v.left_at):
                counts[v.outcome] += 1
                if v.outcome == "answered":
                    answered_wait += v.wait_s or 0.0
                    within += (v.wait_s or 0.0) <= (v.service_level_s or 0.0)
            wait = _wait_in(v, window)
            if wait is not None:
                longest = wait if longest is None else max(longest, wait)
        done = [h for h in handled if window.holds(h.wrap_up_ended_at)]
        return cls(offered=offered, transferred_in=transferred_in,
                   answered=counts["answered"], answered_within_sl=within,
                   abandoned=counts["abandoned"], short_abandoned=counts["short_abandoned"],
                   overflowed=counts["overflowed"], transferred_out=counts["transferred_out"],
                   answered_wait_s=answered_wait, handled=len(done),
                   handle_s=sum(handle_time(h) for h in done), longest_wait_s=longest)


def _wait_in(visit: Visit, window: Window) -> float | None:
    """The visit's wait as of the end of its stay in the window; None if it did
    not wait during the window."""
    if visit.offered_at >= window.until:
        return None
    if visit.left_at is not None and visit.left_at < window.since:
        return None
    if visit.left_at is not None and visit.left_at < window.until:
        return visit.wait_s
    return (window.until - visit.offered_at).total_seconds()


def handle_time(handling: Handling) -> float:
    """Talk (which includes hold: the agent is on the call while it is held) + wrap-up."""
    return (handling.talk_s or 0.0) + (handling.wrap_up_s or 0.0)


def ratio(part: float, whole: float) -> float | None:
    """part / whole; None (not 0, not 1) when there is nothing to divide."""
    return part / whole if whole else None


def service_level(s: QueueSums) -> float | None:
    """SL, the variant used here ("short abandons excluded"):
    answered within T / (offered - short abandons).

    Other variants (docs/metrics.md): answered within T / offered;
    answered within T / answered; (answered within T + abandoned within T) / offered.
    """
    return ratio(s.answered_within_sl, s.offered - s.short_abandoned)


def abandonment_rate(s: QueueSums) -> float | None:
    """abandoned (short abandons excluded) / (offered - short abandons)."""
    return ratio(s.abandoned, s.offered - s.short_abandoned)


def asa(s: QueueSums) -> float | None:
    """Average speed of answer: total wait of answered calls / answered."""
    return ratio(s.answered_wait_s, s.answered)


def aht(s: QueueSums) -> float | None:
    """Average handle time: (talk + hold + wrap-up) / handled calls."""
    return ratio(s.handle_s, s.handled)


def queue_figures(s: QueueSums, window: Window) -> dict[str, Any]:
    """Every queue figure of one window (the fields of api.schemas.live.QueueFigures)."""
    return {
        "since": window.since, "until": window.until,
        "offered": s.offered, "answered": s.answered,
        "answered_within_sl": s.answered_within_sl, "abandoned": s.abandoned,
        "short_abandoned": s.short_abandoned, "transferred_in": s.transferred_in,
        "transferred_out": s.transferred_out, "overflowed": s.overflowed,
        "service_level": service_level(s), "asa_s": asa(s), "aht_s": aht(s),
        "longest_wait_s": s.longest_wait_s, "abandonment_rate": abandonment_rate(s),
    }


# -- agent sums and figures ---------------------------------------------------------------


@dataclass(frozen=True)
class AgentSums:
    """What SQL (``AGENT_SUMS`` with ``AGENT_HANDLED``) returns for one agent over a window."""

    staffed_s: float = 0.0  # logged in, in any state
    paused_s: float = 0.0
    on_call_s: float = 0.0
    wrap_up_s: float = 0.0
    handled: int = 0
    handle_s: float = 0.0
    missed_offers: int = 0


def occupancy(a: AgentSums) -> float | None:
    """(time on calls + wrap-up) / (time staffed - time paused)."""
    return ratio(a.on_call_s + a.wrap_up_s, a.staffed_s - a.paused_s)


def agent_aht(a: AgentSums) -> float | None:
    return ratio(a.handle_s, a.handled)


@dataclass(frozen=True)
class Period:
    """One row of agent_state_intervals."""

    agent_id: UUID
    state: str
    started_at: datetime
    ended_at: datetime | None
    reason: str | None = None  # the pause reason, for paused periods (time by reason)


def clipped_s(period: Period, window: Window) -> float:
    """Seconds of the period inside the window (an open period runs to ``until``)."""
    end = min(period.ended_at or window.until, window.until)
    return max(0.0, (end - max(period.started_at, window.since)).total_seconds())


def agent_sums(periods: Sequence[Period], handled: Iterable[Handling], missed: Iterable[datetime],
               window: Window) -> AgentSums:
    """The same sums as the SQL, in Python, for one agent's rows."""
    def time_in(*states: str) -> float:
        return sum(clipped_s(p, window) for p in periods if p.state in states)

    done = [h for h in handled if window.holds(h.wrap_up_ended_at)]
    return AgentSums(
        staffed_s=sum(clipped_s(p, window) for p in periods if p.state != "logged_out"),
        paused_s=time_in("paused"), on_call_s=time_in("on_call"), wrap_up_s=time_in("wrap_up"),
        handled=len(done), handle_s=sum(handle_time(h) for h in done),
        missed_offers=sum(1 for at in missed if window.holds(at)))


# -- report sums (issue 11): handle time in its parts, time by state and reason -----------


@dataclass(frozen=True)
class HandleSplit:
    """The handle time of the calls handled in a window, in its three parts: talk
    (hold left out), hold and after-call work. ``talk_s + hold_s + after_call_s`` is
    the ``handle_s`` of ``QueueSums``/``AgentSums`` for the same calls."""

    talk_s: float = 0.0
    hold_s: float = 0.0
    after_call_s: float = 0.0


def handle_split(handled: Iterable[Handling], window: Window) -> HandleSplit:
    """The same sums as ``HANDLE_SPLIT``, in Python (same membership as handled/AHT)."""
    done = [h for h in handled if window.holds(h.wrap_up_ended_at)]
    return HandleSplit(talk_s=sum((h.talk_s or 0.0) - h.hold_s for h in done),
                       hold_s=sum(h.hold_s for h in done),
                       after_call_s=sum(h.wrap_up_s or 0.0 for h in done))


def state_times(periods: Iterable[Period], window: Window) -> dict[tuple[str, str], float]:
    """Seconds in each logged-in state over the window, keyed (state, pause reason or '');
    the same sums as ``AGENT_STATE_TIMES``. Their total is ``AgentSums.staffed_s``."""
    times: dict[tuple[str, str], float] = {}
    for p in periods:
        seconds = clipped_s(p, window)
        if p.state == "logged_out" or seconds <= 0:
            continue
        key = (p.state, (p.reason or "") if p.state == "paused" else "")
        times[key] = times.get(key, 0.0) + seconds
    return times

