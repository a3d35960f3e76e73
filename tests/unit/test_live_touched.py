"""What a projection commit says it touched (projections/touched.py) and how the live
feed checks that the notifications it holds cover what moved (api/live/stream.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

from api.live.views import UNCOVERED, covered
from projections.envelope import EventEnvelope
from projections.touched import MAX_PAYLOAD, Touched, touched_ids

APPLIED = frozenset({"queue", "agent", "call", "ivrmenu"})


def envelope(kind: str, subject: UUID, position: int, **data: object) -> EventEnvelope:
    return EventEnvelope(uuid4(), f"dialtone.{kind}.something.v1", subject, 1, position,
                         datetime(2026, 12, 3, tzinfo=UTC), data)


def test_a_batch_touches_its_aggregates_and_the_ids_their_data_names() -> None:
    queue, call, agent, other = uuid4(), uuid4(), uuid4(), uuid4()
    batch = [envelope("queue", queue, 1, call_id=str(call), agent_id=agent, wait_s=3.0),
             envelope("agent", agent, 2, queue_id=None, reason="lunch"),
             envelope("call", call, 3, legs=[{"peer": str(other)}], caller="sip:1@x")]
    assert touched_ids(batch, APPLIED) == frozenset({queue, call, agent, other})


def test_a_kind_not_tied_to_ids_touches_everything_and_one_nobody_applies_nothing() -> None:
    queue = uuid4()
    assert touched_ids([envelope("queue", queue, 1), envelope("ivrmenu", uuid4(), 2)],
                       APPLIED) is None
    assert touched_ids([envelope("queue", queue, 1), envelope("webhook", uuid4(), 2)],
                       APPLIED) == frozenset({queue})


def test_the_payload_round_trips_and_falls_back_to_everything_when_too_large() -> None:
    few = Touched("store:x", 10, 12, frozenset({uuid4(), uuid4()}))
    assert Touched.parse(few.payload()) == few
    many = Touched("store:x", 10, 400, frozenset(uuid4() for _ in range(300)))
    text = many.payload()
    assert len(text.encode()) <= MAX_PAYLOAD < len(json.dumps(sorted(map(str, many.ids or ()))))
    assert Touched.parse(text) == Touched("store:x", 10, 400, None)
    assert Touched.parse("") is None  # the trigger's own notification
    assert Touched.parse("{not json") is None


def test_notifications_that_cover_every_moved_row_give_their_ids() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    kept = {"store:x": [Touched("store:x", 0, 5, frozenset({a})),
                        Touched("store:x", 5, 9, frozenset({b})),
                        Touched("store:x", 9, 12, frozenset({c}))]}  # after the read's rows
    moved = {("agent_state", "store:x"): (0, 9), ("call_live", "store:x"): (5, 9)}
    assert covered(kept, moved) == {a, b}
    assert covered(kept, {}) == frozenset()


def test_a_gap_or_a_notification_naming_everything_makes_a_whole_read() -> None:
    a = uuid4()
    gap = {"store:x": [Touched("store:x", 0, 5, frozenset({a})),
                       Touched("store:x", 6, 9, frozenset())]}  # 5..6: a writer said nothing
    assert covered(gap, {("queue_live", "store:x"): (0, 9)}) is UNCOVERED
    assert covered(gap, {("queue_live", "store:y"): (0, 1)}) is UNCOVERED  # nothing of y
    everything = {"store:x": [Touched("store:x", 0, 5, frozenset({a})),
                              Touched("store:x", 5, 9, None)]}
    assert covered(everything, {("queue_live", "store:x"): (0, 9)}) is None
