"""What the Queue aggregate's unit tests (test_queue.py, test_queue_call_flow.py)
share: a fixed clock, three members and five calls, a queue with those members
and no history to collect, and the flow balance every tally must keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.queue import Queue, QueueTally

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
A1, A2, A3 = (UUID(int=n) for n in (1, 2, 3))
C1, C2, C3, C4, C5 = (UUID(int=100 + n) for n in range(1, 6))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_queue(key: str = "sales", **kwargs: object) -> Queue:
    queue = Queue.create(key, key.title(), occurred_at=T0, **kwargs)  # type: ignore[arg-type]
    for agent_id in (A1, A2, A3):
        queue.add_member(agent_id, 0, T0)
    queue.collect_events()
    return queue


def order(queue: Queue) -> list[UUID]:
    return [c.call_id for c in queue.calls]


def flow_balances(tally: QueueTally, waiting: int) -> bool:
    left = tally.answered + tally.abandoned + tally.overflowed + tally.transferred_out
    return tally.offered == left + waiting
