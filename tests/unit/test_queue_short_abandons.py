"""queue_live's ``short_abandoned`` (projections/queue_view.py): the abandons sooner than
the queue's short-abandon threshold as it stood at the abandon, counted as the visits
count them (projections/queue_visits.py). With it, the counters GET /metrics exports
give docs/metrics.md's service level, answered within T / (offered - short abandons)
(kpi.service_level), which the Prometheus rule and the Grafana panel take over an hour;
``abandoned_within_sl`` (a wait of at most T) is another count."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from application.callcentre import CallCentreService
from projections import kpi, queue_view, queue_visits
from projections.envelope import EventEnvelope, decode
from tests.unit.test_kpi_properties import EVES, KINDS, History

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def views_of(events: list[EventEnvelope]) -> dict[UUID, queue_view.QueueView]:
    views: dict[UUID, queue_view.QueueView] = {}
    for e in sorted((e for e in events if e.kind == "queue"), key=lambda e: e.position):
        view = views.get(e.subject)
        views[e.subject] = queue_view.start(e) if view is None else queue_view.advance(view, e)
    return views


def rule_service_level(view: queue_view.QueueView) -> float | None:
    """dialtone:queue_service_level:ratio_1h over the counters' whole history."""
    counted = view.tally.offered - view.short_abandoned
    return view.tally.answered_within_sl / counted if counted > 0 else None


def test_a_short_abandon_is_judged_by_the_threshold_in_force_when_the_caller_hung_up() -> None:
    service = CallCentreService()
    queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0,
                                 service_level_s=20.0)  # short abandons: under 5 s
    at = T0

    def short_abandons_under(seconds: float) -> None:
        service.configure_queue(queue.id, lambda q: q.set_short_abandon(seconds, at))

    for wait_s, short_abandon_s in ((2, None), (10, None), (30, None), (10, 15.0), (4, 5.0)):
        at += timedelta(minutes=1)
        if short_abandon_s is not None:
            short_abandons_under(short_abandon_s)
        call = uuid4()
        service.enqueue_call(queue.id, call, 0, at)
        service.abandon_call(queue.id, call, at + timedelta(seconds=wait_s))
    view = views_of(decode(service, service.recorder.select_notifications(1, 1000)))[queue.id]
    # 2 s and 4 s under 5 s, 10 s under 15 s; 10 s and 30 s under 5 s are not.
    assert (view.tally.abandoned, view.short_abandoned) == (5, 3)
    assert view.tally.abandoned_within_sl == 4  # every wait of at most T = 20 s


def test_callers_hanging_up_after_the_short_threshold_but_within_t_count_against_sl() -> None:
    """The audit's figures: 18 calls, 12 answered after 10 s, 6 abandoned after 10 s."""
    service = CallCentreService()
    queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0,
                                 service_level_s=20.0)
    agent = service.create_agent("alice", "Alice", occurred_at=T0).id
    service.add_member(queue.id, agent, 0, T0)
    service.login(agent, "sip:alice@pbx.example.com", T0)
    for n in range(18):
        call, at = uuid4(), T0 + timedelta(minutes=n + 1)
        service.enqueue_call(queue.id, call, 0, at)
        if n < 12:
            service.offer_call(queue.id, call, [agent], at + timedelta(seconds=5))
            service.accept_offer(agent, call, at + timedelta(seconds=10))
            service.end_agent_call(agent, call, at + timedelta(seconds=30))
        else:
            service.abandon_call(queue.id, call, at + timedelta(seconds=10))
    view = views_of(decode(service, service.recorder.select_notifications(1, 1000)))[queue.id]
    assert (view.tally.offered, view.tally.answered_within_sl, view.short_abandoned,
            view.tally.abandoned_within_sl) == (18, 12, 0, 6)
    assert rule_service_level(view) == 12 / 18


def test_the_counters_give_the_visits_short_abandons_and_kpis_service_level() -> None:
    """Random histories whose waits straddle the thresholds (kpi's property test waits
    far longer): the short-abandon threshold moves (``short``, 0-30 s) between calls."""
    kinds = (*KINDS, "abandon", "abandon", "short")
    short = long = 0
    for seed in range(30):
        rng = random.Random(seed)
        history = History(EVES[0].replace(tzinfo=UTC))
        for _ in range(80):
            history.run((rng.choice(kinds), rng.randrange(8), rng.randrange(3),
                         rng.uniform(0.5, 20.0)))
        events = history.events()
        facts = queue_visits.facts_of(events)
        ever = kpi.Window(events[0].occurred_at, history.now + timedelta(seconds=1))
        for queue_id, view in views_of(events).items():
            sums = kpi.QueueSums.of_visits(
                [v for v in facts.visits.values() if v.queue_id == queue_id], [], ever)
            assert view.short_abandoned == sums.short_abandoned, seed
            assert rule_service_level(view) == kpi.service_level(sums), seed
            short += view.short_abandoned
            long += view.tally.abandoned - view.short_abandoned
    assert short > 10  # both kinds of abandon were there to count
    assert long > 10
