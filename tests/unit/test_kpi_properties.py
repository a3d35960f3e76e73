"""Every figure of projections/kpi.py, on random call-centre histories recorded by
the real service (in memory), equals the slow reference over the raw events
(tests/unit/kpi_reference.py): per queue, per agent and tenant-wide, for
"today" in the tenant's zone (histories start late in the local evening, so
they cross midnight, some on a DST night), a rolling window and arbitrary
windows; calls move between queues (a transfer counts in each queue)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.callcentre import CallCentreService
from domain.addressing import Target
from domain.agent import Agent
from domain.errors import DomainError
from domain.queue import Queue
from projections import agent_view, kpi, queue_visits
from projections.envelope import EventEnvelope, decode
from tests.unit import kpi_reference as ref

ZONES = ("UTC", "Europe/Brussels", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
# 23:00 local on an ordinary day and on the eve of a DST change (Europe: 30 March 2025).
EVES = (datetime(2025, 3, 29, 23, 0), datetime(2025, 6, 10, 23, 30))
CALLS = [UUID(int=0xCA11 + n) for n in range(8)]

Op = tuple[str, int, int, float]
# The call flow's steps come more often than the rest, so calls get answered,
# ended and wrapped up, not only abandoned.
KINDS = ("advance", "advance", "enqueue", "enqueue", "offer", "offer", "offer", "accept",
         "accept", "accept", "miss", "abandon", "transfer", "overflow", "end", "end", "end",
         "finish", "finish", "pause", "resume", "resume", "logout", "login", "login", "short")
ops = st.lists(st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 7), st.integers(0, 2), st.floats(0.5, 2400.0)), min_size=5, max_size=60)


class History:
    """A small centre (queues a, b; agents x, y, z) driven by generated operations."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        s = self.service = CallCentreService()
        self.queues = [s.create_queue(k, k.upper(), "longest_idle", occurred_at=start,
                                      wrap_up_s=20).id for k in ("a", "b")]
        self.agents = [s.create_agent(k, k.upper(), occurred_at=start).id for k in "xyz"]
        for n, agent in enumerate(self.agents):
            for queue in self.queues[: 1 + n % 2]:
                s.add_member(queue, agent, 0, start)
            s.login(agent, f"sip:{n}@pbx.example.com", start)
        s.set_overflow(self.queues[1], 60, Target.queue(self.queues[0]), start)

    def run(self, op: Op) -> None:
        kind, n, q, seconds = op
        if kind == "advance":
            self.now += timedelta(seconds=seconds)
            return
        self.now += timedelta(seconds=1)
        with suppress(DomainError):  # a command the domain refuses: no event
            self._command(kind, n, q, seconds)

    def _command(self, kind: str, n: int, q: int, seconds: float) -> None:
        s, at = self.service, self.now
        queue = self.queues[q % 2]
        agent = self.agents[n % 3]
        waiting = s.get(Queue, queue).calls
        call = waiting[n % len(waiting)].call_id if waiting else None
        current = s.get(Agent, agent).current_call_id
        if kind == "enqueue":
            s.enqueue_call(queue, CALLS[n], 0, at)
        elif kind == "short":
            s.configure_queue(queue, lambda x: x.set_short_abandon(seconds % 30, at))
        elif kind == "overflow":
            overflowing = s.get(Queue, self.queues[1]).calls
            if overflowing:
                s.overflow_call(self.queues[1], overflowing[0].call_id, at)
        elif kind in ("accept", "miss", "end"):
            if current is not None:
                {"accept": s.accept_offer, "miss": s.miss_offer,
                 "end": s.end_agent_call}[kind](agent, current, at)
        elif kind in ("offer", "abandon", "transfer"):
            if call is not None:
                self._waiting_call(kind, queue, call, agent, self.queues[(q + 1) % 2])
        else:
            self._agent_state(kind, agent, at)

    def _waiting_call(self, kind: str, queue: UUID, call: UUID, agent: UUID,
                      other: UUID) -> None:
        s, at = self.service, self.now
        if kind == "offer":
            s.offer_call(queue, call, [agent], at)
        elif kind == "abandon":
            s.abandon_call(queue, call, at)
        else:
            s.transfer_call(queue, call, Target.queue(other), at)

    def _agent_state(self, kind: str, agent: UUID, at: datetime) -> None:
        s = self.service
        if kind == "finish":
            s.finish_wrap_up(agent, at)
        elif kind == "pause":
            s.pause(agent, "coffee", at)
        elif kind == "resume":
            s.resume(agent, at)
        elif kind == "logout":
            s.logout(agent, at)
        else:
            s.login(agent, "sip:again@pbx.example.com", at)

    def events(self) -> list[EventEnvelope]:
        s = self.service
        return decode(s, s.recorder.select_notifications(1, 100_000))


def periods(events: Sequence[EventEnvelope]) -> list[kpi.Period]:
    """agent_state_intervals in memory: a period per state-starting event."""
    views: dict[UUID, agent_view.AgentView] = {}
    found: list[kpi.Period] = []
    for e in sorted((e for e in events if e.kind == "agent"), key=lambda e: e.position):
        view = views.get(e.subject)
        version = None if view is None else view.state_version
        view = views[e.subject] = (agent_view.start(e) if view is None
                                   else agent_view.advance(view, e))
        if version != view.state_version:
            if found and (last := _open(found, e.subject)) is not None:
                found[found.index(last)] = kpi.Period(last.agent_id, last.state,
                                                      last.started_at, e.occurred_at)
            found.append(kpi.Period(e.subject, view.state, e.occurred_at, None))
    return found


def _open(found: list[kpi.Period], agent_id: UUID) -> kpi.Period | None:
    return next((p for p in reversed(found) if p.agent_id == agent_id and p.ended_at is None),
                None)


def fast_queue(facts: queue_visits.Facts, window: kpi.Window,
               queue_id: UUID | None) -> dict[str, Any]:
    visits = [v for v in facts.visits.values() if queue_id in (None, v.queue_id)]
    handled = [h for h in facts.handled.values() if h.queue_id is not None
               and queue_id in (None, h.queue_id)]
    return kpi.queue_figures(kpi.QueueSums.of_visits(visits, handled, window), window)


def fast_agent(events: Sequence[EventEnvelope], facts: queue_visits.Facts, agent_id: UUID,
               window: kpi.Window) -> dict[str, Any]:
    sums = kpi.agent_sums(
        [p for p in periods(events) if p.agent_id == agent_id],
        [h for h in facts.handled.values() if h.agent_id == agent_id],
        [e.occurred_at for e in events if e.subject == agent_id and e.name == "offer_missed"],
        window)
    return {"handled": sums.handled, "aht_s": kpi.agent_aht(sums),
            "occupancy": kpi.occupancy(sums), "missed_offers": sums.missed_offers}


def numbers_of(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures without the window bounds (approx compares numbers only)."""
    return {k: v for k, v in figures.items() if k not in ("since", "until")}


def windows(history: History, zone: str, cut: float) -> list[kpi.Window]:
    start = history.events()[0].occurred_at
    end = history.now + timedelta(seconds=1)
    middle = start + (end - start) * cut
    return [kpi.today(end, zone), kpi.rolling(end), kpi.rolling(end, 3600 * cut + 60),
            kpi.Window(start, middle), kpi.Window(middle, end), kpi.today(middle, zone)]


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), eve=st.sampled_from(EVES), script=ops,
       cut=st.floats(0.05, 0.95))
def test_every_figure_equals_the_reference(zone: str, eve: datetime, script: list[Op],
                                           cut: float) -> None:
    history = History(eve.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC))
    for op in script:
        history.run(op)
    events = history.events()
    facts = queue_visits.facts_of(events)
    for window in windows(history, zone, cut):
        for queue_id in (*history.queues, None):
            expected = ref.queue_figures(events, window.since, window.until, queue_id)
            assert numbers_of(fast_queue(facts, window, queue_id)) == pytest.approx(
                numbers_of(expected)), queue_id
        for agent_id in history.agents:
            expected = ref.agent_figures(events, agent_id, window.since, window.until)
            assert fast_agent(events, facts, agent_id, window) == pytest.approx(expected)


def test_today_starts_at_local_midnight_on_a_dst_day() -> None:
    brussels = "Europe/Brussels"
    # 30 March 2025 is 23 hours long in Brussels (02:00 CET -> 03:00 CEST).
    late = kpi.today(datetime(2025, 3, 30, 21, 0, tzinfo=UTC), brussels)  # 23:00 CEST
    assert late.since == datetime(2025, 3, 29, 23, 0, tzinfo=UTC)  # 00:00 CET
    following = kpi.today(datetime(2025, 3, 30, 22, 0, tzinfo=UTC), brussels)
    assert following.since == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)  # 00:00 CEST
    assert following.since - late.since == timedelta(hours=23)


def test_a_transferred_call_counts_once_in_each_queue() -> None:
    history = History(datetime(2025, 6, 10, 12, 0, tzinfo=UTC))
    a, b = history.queues
    for op in [("enqueue", 0, 0, 0.0), ("advance", 0, 0, 30.0), ("transfer", 0, 0, 0.0)]:
        history.run(op)
    facts = queue_visits.facts_of(history.events())
    window = kpi.Window(datetime(2025, 6, 10, tzinfo=UTC), history.now + timedelta(seconds=5))
    first, second = fast_queue(facts, window, a), fast_queue(facts, window, b)
    assert (first["offered"], first["transferred_out"], first["transferred_in"]) == (1, 1, 0)
    assert (second["offered"], second["transferred_in"], second["transferred_out"]) == (1, 1, 0)
    assert fast_queue(facts, window, None)["offered"] == 2


@pytest.mark.parametrize(("name", "valid"), [("Europe/Brussels", True), ("UTC", True),
                                             ("Mars/Olympus", False), ("../etc", False)])
def test_time_zones_are_checked_with_zoneinfo(name: str, valid: bool) -> None:
    if valid:
        assert kpi.check_time_zone(name) == name
    else:
        with pytest.raises(ValueError, match="unknown time zone"):
            kpi.check_time_zone(name)


def test_ratios_with_nothing_to_divide_are_none() -> None:
    empty = kpi.QueueSums()
    assert (kpi.service_level(empty), kpi.asa(empty), kpi.aht(empty),
            kpi.abandonment_rate(empty), kpi.occupancy(kpi.AgentSums())) == (None,) * 5
    # Only short abandons: nothing counts toward SL or the abandonment rate.
    assert kpi.service_level(kpi.QueueSums(offered=2, short_abandoned=2)) is None


def test_an_abandon_sooner_than_the_threshold_is_short() -> None:
    history = History(datetime(2025, 6, 10, 12, 0, tzinfo=UTC))
    a = history.queues[0]
    # waits: 1 + 2.5 = 3.5 s (short, under 5 s), then 1 + 5 = 6 s (abandoned)
    for op in [("enqueue", 0, 0, 0.0), ("advance", 0, 0, 2.5), ("abandon", 0, 0, 0.0),
               ("enqueue", 1, 0, 0.0), ("advance", 0, 0, 5.0), ("abandon", 0, 0, 0.0)]:
        history.run(op)
    facts = queue_visits.facts_of(history.events())
    window = kpi.Window(datetime(2025, 6, 10, tzinfo=UTC), history.now + timedelta(seconds=5))
    figures = fast_queue(facts, window, a)
    assert (figures["offered"], figures["short_abandoned"], figures["abandoned"]) == (2, 1, 1)
    assert (figures["abandonment_rate"], figures["service_level"]) == (1.0, 0.0)
