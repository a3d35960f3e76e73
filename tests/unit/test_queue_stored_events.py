"""Queue events stored before domain/queue.py was split into modules still load,
and the split code stores exactly what the old code stored.

queue_stored_events_v1.json holds one queue's history (every Queue event type)
as the pre-split code wrote it to the event store: the topic and the
transcoded state. The events' code now lives in domain/queue_config.py and
domain/queue_flow.py; their topics must still be ``domain.queue:Queue.<Name>``
(stored rows, the topic index ``ids_of`` reads, the published
``dialtone.queue.<name>.v1`` types all depend on it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from application.callcentre import CallCentreService
from domain.addressing import Target, TargetKind
from domain.agent import Agent
from domain.queue import Queue
from domain.queue_config import StrategyChanged
from domain.queue_values import QueuedCall, QueueMember, QueueTally
from domain.routing import RoutingStrategy
from projections.envelope import event_type

STORED = json.loads((Path(__file__).parent / "queue_stored_events_v1.json").read_text())["events"]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
A1 = UUID("00000000-0000-4000-8000-0000000000a1")
A2 = UUID("00000000-0000-4000-8000-0000000000a2")
CALLS = [UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in range(1, 6)]
OTHER = Queue.id_for("other")
# What was added within version 1 after the old code stored the history: event
# types it could not store, and optional fields (absent from its events).
ADDED_TYPES = {"CallOfferMissed"}
ADDED_FIELDS = {"domain.queue:Queue.CallRequeued": {"position"}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def history() -> Queue:
    """The commands that produced queue_stored_events_v1.json."""
    q = Queue.create("sales", "Sales", occurred_at=at(0))
    q.change_strategy(RoutingStrategy.ROUND_ROBIN, at(1))
    q.set_service_level(30.0, at(2))
    q.set_overflow(120.0, Target(TargetKind.QUEUE, str(OTHER)), at(3))
    q.clear_overflow(at(4))
    q.set_overflow(60.0, Target(TargetKind.NUMBER, "+15550100"), at(5))
    q.set_wrap_up(10.0, at(6))
    q.set_offer_timeout(20.0, at(7))
    q.set_music_on_hold("jazz", at(8))
    q.set_position_announcements(True, at(9))
    q.set_short_abandon(3.0, at(10))
    q.set_recording(True, at(11))
    q.add_member(A1, 1, at(12))
    q.add_member(A2, 5, at(13))
    q.update_member(A2, 2, at(14))
    q.require_skill("english", 40, at(15))
    q.require_skill("french", 20, at(16))
    q.drop_skill_requirement("french", at(17))
    q.enqueue(CALLS[0], 0, at(20))
    q.enqueue(CALLS[1], 5, at(21), transferred_from=OTHER)
    q.offer(CALLS[1], A1, at(22))
    q.requeue(CALLS[1], at(23))
    q.offer(CALLS[1], A2, at(24))
    q.answer(CALLS[1], A2, at(30))
    q.enqueue(CALLS[2], 0, at(31))
    q.abandon(CALLS[2], at(33))
    q.overflow(CALLS[0], at(90))
    q.enqueue(CALLS[3], 1, at(91))
    q.transfer_out(CALLS[3], Target(TargetKind.NUMBER, "+15550199"), at(95))
    q.enqueue(CALLS[4], 0, at(96))
    q.remove_member(A1, at(97))
    return q


@pytest.fixture(scope="module")
def service() -> Any:
    app = CallCentreService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()


def _without_timestamp(state: bytes | str, topic: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(state)
    decoded.pop("timestamp")  # when it was recorded: differs on every run
    for added in ADDED_FIELDS.get(topic, ()):
        decoded.pop(added, None)
    return decoded


def test_the_old_history_covers_every_queue_event_type() -> None:
    names = {k for k, v in vars(Queue).items() if isinstance(v, type) and k != "Event"}
    assert {e["topic"].removeprefix("domain.queue:Queue.") for e in STORED} == names - ADDED_TYPES


def test_events_stored_by_the_old_code_load_and_replay(service: Any) -> None:
    queue_id = Queue.id_for("sales")
    events = [service.mapper.to_domain_event(StoredEvent(queue_id, n, e["topic"],
                                                         e["state"].encode()))
              for n, e in enumerate(STORED, start=1)]
    queue: Any = None
    for event in events:
        queue = event.mutate(queue)
    assert isinstance(queue, Queue)
    assert queue.version == len(STORED)
    assert (queue.strategy, queue.service_level_s, queue.wrap_up_s) == (
        RoutingStrategy.ROUND_ROBIN, 30.0, 10.0)
    assert (queue.max_wait_s, queue.overflow_target) == (60.0, Target(TargetKind.NUMBER,
                                                                      "+15550100"))
    assert (queue.offer_timeout_s, queue.music_on_hold, queue.announce_position) == (
        20.0, "jazz", True)
    assert (queue.short_abandon_s, queue.record_calls) == (3.0, True)
    assert queue.members == {A2: QueueMember(2, last_offered=2)}
    assert queue.required_skills == {"english": 40}
    assert queue.calls == [QueuedCall(CALLS[4], 0, at(96))]
    assert queue.tally == QueueTally(offered=5, answered=1, answered_within_sl=1, abandoned=1,
                                     abandoned_within_sl=1, overflowed=1, transferred_in=1,
                                     transferred_out=1, requeued=1, agent_offers=2)
    (requeued,) = [e for e in events if isinstance(e, Queue.CallRequeued)]
    assert requeued.position is None  # stored before positions were: the head of its band
    assert isinstance(events[-2], Queue.CallEnqueued)
    assert event_type(events[-2]) == "dialtone.queue.call_enqueued.v1"


def test_the_split_code_stores_what_the_old_code_stored(service: Any) -> None:
    stored = [service.mapper.to_stored_event(e) for e in history().collect_events()]
    assert [s.topic for s in stored] == [e["topic"] for e in STORED]
    assert [_without_timestamp(s.state, s.topic) for s in stored] == [
        _without_timestamp(e["state"], e["topic"]) for e in STORED]


def test_a_half_triggers_the_aggregates_own_event_class() -> None:
    queue = Queue.create("q", "Q", occurred_at=at(0))
    queue.change_strategy(RoutingStrategy.FEWEST_CALLS, at(1))
    (_, changed) = queue.collect_events()
    assert type(changed) is Queue.StrategyChanged
    assert Queue.StrategyChanged is not StrategyChanged  # the template, re-defined
    assert isinstance(changed, StrategyChanged)


def test_an_event_of_another_aggregate_is_refused() -> None:
    queue = Queue.create("q", "Q", occurred_at=at(0))
    with pytest.raises(TypeError, match="not an event of Queue"):
        queue._trigger(Agent.Paused, at(1), reason="lunch")
