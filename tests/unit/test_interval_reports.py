"""Interval reports (issue 11 §1) without a database: the calendar of report buckets
(UTC quarter hours, local hours and days, DST days of 23 and 25 hours), and, on
generated call-centre histories (the kpi property tests' generator), that the
sums of the 15-minute buckets a report adds up give kpi's figures for the
whole report bucket: counts and times add, the longest wait is a max."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import agent_view, interval_buckets, interval_reports, kpi, queue_visits
from projections.envelope import EventEnvelope
from tests.unit.test_kpi_properties import EVES, ZONES, History, Op, ops

BRUSSELS = "Europe/Brussels"


def lengths(buckets: Sequence[kpi.Window]) -> list[timedelta]:
    return [b.until - b.since for b in buckets]


def test_a_dst_day_has_23_or_25_hours_in_the_tenants_zone() -> None:
    spring = interval_reports.buckets(datetime(2025, 3, 29, 12, tzinfo=UTC),
                                      datetime(2025, 3, 31, 12, tzinfo=UTC), "1d", BRUSSELS)
    assert [b.since for b in spring] == [datetime(2025, 3, 28, 23, tzinfo=UTC),
                                         datetime(2025, 3, 29, 23, tzinfo=UTC),
                                         datetime(2025, 3, 30, 22, tzinfo=UTC)]
    assert lengths(spring) == [timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]
    autumn = interval_reports.buckets(datetime(2025, 10, 26, 12, tzinfo=UTC),
                                      datetime(2025, 10, 26, 13, tzinfo=UTC), "1d", BRUSSELS)
    assert [(b.since, b.until - b.since) for b in autumn] == [
        (datetime(2025, 10, 25, 22, tzinfo=UTC), timedelta(hours=25))]
    # The repeated hour of the autumn night is two hourly buckets, not one of two hours.
    night = interval_reports.buckets(datetime(2025, 10, 26, 0, tzinfo=UTC),
                                     datetime(2025, 10, 26, 2, tzinfo=UTC), "1h", BRUSSELS)
    assert lengths(night) == [timedelta(hours=1)] * 2


@pytest.mark.parametrize(("zone", "minute"), [("Asia/Kolkata", 30), ("Asia/Kathmandu", 15),
                                              ("Pacific/Chatham", 15), ("UTC", 0)])
def test_local_hours_are_unions_of_utc_quarter_hours(zone: str, minute: int) -> None:
    hours = interval_reports.buckets(datetime(2025, 6, 10, 8, 50, tzinfo=UTC),
                                     datetime(2025, 6, 10, 11, tzinfo=UTC), "1h", zone)
    assert all(b.since.minute == minute and b.since.astimezone(ZoneInfo(zone)).minute == 0
               for b in hours)
    assert hours[0].since <= datetime(2025, 6, 10, 8, 50, tzinfo=UTC) < hours[0].until
    assert lengths(hours) == [timedelta(hours=1)] * len(hours)


def test_quarter_hours_are_utc_aligned_and_an_empty_range_has_none() -> None:
    quarters = interval_reports.buckets(datetime(2025, 6, 10, 8, 50, tzinfo=UTC),
                                        datetime(2025, 6, 10, 9, 16, tzinfo=UTC), "15m", BRUSSELS)
    assert [b.since.minute for b in quarters] == [45, 0, 15]
    instant = datetime(2025, 6, 10, 8, 50, tzinfo=UTC)
    assert interval_reports.buckets(instant, instant, "1d", BRUSSELS) == []


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["default", "acme"]),
                          st.datetimes(min_value=datetime(1960, 1, 1),
                                       max_value=datetime(2100, 1, 1), timezones=st.just(UTC))),
                max_size=40))
def test_a_batch_marks_each_tenant_bucket_of_its_events_once(
        events: list[tuple[str, datetime]]) -> None:
    touched = interval_buckets.TouchedBuckets()
    for tenant, at in events:
        touched.add(tenant, at)
    assert touched.starts() == sorted({(tenant, interval_buckets.floor(at))
                                       for tenant, at in events})


def test_an_event_on_a_bucket_boundary_marks_that_bucket() -> None:
    touched = interval_buckets.TouchedBuckets()
    touched.add("default", datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    touched.add("default", datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC))
    touched.add("default", datetime(1969, 12, 31, 23, 50, tzinfo=UTC))  # before the epoch
    assert touched.starts() == [("default", datetime(1969, 12, 31, 23, 45, tzinfo=UTC)),
                                ("default", datetime(2026, 3, 29, 0, 45, tzinfo=UTC)),
                                ("default", datetime(2026, 3, 29, 1, 0, tzinfo=UTC))]


def test_live_windows_are_the_uncomputed_runs_and_the_running_bucket() -> None:
    day = kpi.Window(datetime(2025, 6, 10, tzinfo=UTC), datetime(2025, 6, 11, tzinfo=UTC))
    q = interval_buckets.BUCKET
    computed = {day.since + q, day.since + 2 * q, day.since + 5 * q}
    now = day.since + 5 * q + timedelta(minutes=3)
    assert interval_reports.live_windows(day, computed, now) == [
        kpi.Window(day.since, day.since + q), kpi.Window(day.since + 3 * q, now)]


# -- bucket sums add up to kpi's sums of the whole window ---------------------------------


def periods(events: Sequence[EventEnvelope]) -> list[kpi.Period]:
    """agent_state_intervals in memory, with pause reasons (time by reason)."""
    views: dict[UUID, agent_view.AgentView] = {}
    found: list[kpi.Period] = []
    for e in sorted((e for e in events if e.kind == "agent"), key=lambda e: e.position):
        view = views.get(e.subject)
        version = None if view is None else view.state_version
        view = views[e.subject] = (agent_view.start(e) if view is None
                                   else agent_view.advance(view, e))
        if version != view.state_version:
            for n, p in enumerate(found):
                if p.agent_id == e.subject and p.ended_at is None:
                    found[n] = kpi.Period(p.agent_id, p.state, p.started_at, e.occurred_at,
                                          p.reason)
            found.append(kpi.Period(e.subject, view.state, e.occurred_at, None,
                                    view.pause_reason))
    return found


class Sums:
    """kpi's sums of any window, in Python, shaped as the bucket tables' rows."""

    def __init__(self, events: list[EventEnvelope]) -> None:
        self.facts = queue_visits.facts_of(events)
        self.periods = periods(events)
        self.missed = [(e.subject, e.occurred_at) for e in events if e.name == "offer_missed"]

    def queue(self, queue_id: UUID, w: kpi.Window) -> dict[str, Any]:
        visits = [v for v in self.facts.visits.values() if v.queue_id == queue_id]
        handled = [h for h in self.facts.handled.values() if h.queue_id == queue_id]
        split = kpi.handle_split(handled, w)
        return {**interval_buckets.vars_of(kpi.QueueSums.of_visits(visits, handled, w)),
                "talk_s": split.talk_s, "after_call_s": split.after_call_s}

    def agent(self, agent_id: UUID, w: kpi.Window) -> dict[str, Any]:
        own = [p for p in self.periods if p.agent_id == agent_id]
        handled = [h for h in self.facts.handled.values() if h.agent_id == agent_id]
        missed = [at for a, at in self.missed if a == agent_id]
        split = kpi.handle_split(handled, w)
        return {**interval_buckets.vars_of(kpi.agent_sums(own, handled, missed, w)),
                "talk_s": split.talk_s, "after_call_s": split.after_call_s,
                "states": kpi.state_times(own, w)}


def added(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for part in parts:
        interval_reports.add(total, part)
    return total


def flat_numbers(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures without the window bounds, nested maps flattened (for approx)."""
    flat: dict[str, Any] = {}
    for k, v in figures.items():
        if isinstance(v, dict):
            flat.update({f"{k}.{inner}": n for inner, n in v.items()})
        elif k not in ("since", "until"):
            flat[k] = v
    return flat


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES), eve=st.sampled_from(EVES), script=ops,
       interval=st.sampled_from(["1h", "1d"]))
def test_report_buckets_add_up_to_kpis_figures_of_the_window(
        zone: str, eve: datetime, script: list[Op], interval: interval_reports.Interval) -> None:
    history = History(eve.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC))
    for op in script:
        history.run(op)
    events = history.events()
    sums = Sums(events)
    end = history.now + timedelta(minutes=20)  # open periods and waits run on past the last event
    for report in interval_reports.buckets(events[0].occurred_at, end, interval, zone):
        quarters = interval_reports.buckets(report.since, report.until, "15m", zone)
        for queue_id in history.queues:
            whole = interval_reports.queue_figures(sums.queue(queue_id, report), report)
            parts = added([sums.queue(queue_id, q) for q in quarters])
            assert flat_numbers(interval_reports.queue_figures(parts, report)) == pytest.approx(
                flat_numbers(whole)), (report, queue_id)
        for agent_id in history.agents:
            whole = interval_reports.agent_figures(sums.agent(agent_id, report), report)
            parts = added([sums.agent(agent_id, q) for q in quarters])
            assert flat_numbers(interval_reports.agent_figures(parts, report)) == pytest.approx(
                flat_numbers(whole)), (report, agent_id)


def test_state_times_add_up_to_the_staffed_time() -> None:
    history = History(datetime(2025, 6, 10, 12, 0, tzinfo=UTC))
    for op in [("pause", 0, 0, 0.0), ("advance", 0, 0, 600.0), ("resume", 0, 0, 0.0),
               ("advance", 0, 0, 300.0)]:
        history.run(op)
    sums = Sums(history.events())
    window = kpi.Window(datetime(2025, 6, 10, 12, tzinfo=UTC), history.now)
    figures = interval_reports.agent_figures(sums.agent(history.agents[0], window), window)
    assert figures["pause_by_reason"] == {"coffee": 601.0}  # each command takes 1 s
    assert sum(figures["time_by_state"].values()) == pytest.approx(figures["staffed_s"])


def test_stored_seconds_do_not_depend_on_the_order_they_were_summed_in() -> None:
    exact = interval_buckets.exact_seconds
    periods = [94.054971, 593.203616, 534.642233, 178.548318, 346.804561]
    forward, backward = sum(periods), sum(reversed(periods))
    assert forward != backward  # what PostgreSQL's SUM over double precision can give
    assert exact(forward) == exact(backward) == round(forward, 6)


def test_the_handle_split_takes_the_hold_out_of_talk() -> None:
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    handling = kpi.Handling(agent_id=UUID(int=1), call_id=UUID(int=2), queue_id=None,
                            accepted_at=start, ended_at=start + timedelta(seconds=95),
                            talk_s=95.0, wrap_up_ended_at=start + timedelta(seconds=125),
                            wrap_up_s=30.0, hold_s=35.0)
    split = kpi.handle_split([handling], kpi.Window(start, start + interval_buckets.BUCKET))
    assert split == kpi.HandleSplit(talk_s=60.0, hold_s=35.0, after_call_s=30.0)
    assert split.talk_s + split.hold_s + split.after_call_s == kpi.handle_time(handling)
    figures = interval_reports.agent_figures(
        {"handled": 1, "handle_s": 125.0, **vars(split)},
        kpi.Window(start, start + interval_buckets.BUCKET))
    assert (figures["talk_s"], figures["hold_s"], figures["wrap_up_s"], figures["aht_s"]) == (
        60.0, 35.0, 30.0, 125.0)
