"""The Faust worker's projection_positions sources: every commit moves its source's
row (the live feed wakes on their sum), and there is at most one row per partition."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

from faust.types import EventT
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.envelope import EventEnvelope
from streams.worker import source_of

PARTITIONS = 12


def record(partition: int, position: int) -> tuple[EventT[bytes], EventEnvelope]:
    event = cast(EventT[bytes], SimpleNamespace(
        message=SimpleNamespace(topic="t.dialtone.queues.v1", partition=partition)))
    envelope = EventEnvelope(uuid4(), "dialtone.queue.call_enqueued.v1", uuid4(), 1, position,
                             datetime(2026, 12, 4, tzinfo=UTC), {})
    return event, envelope


def test_a_batch_is_named_after_the_partition_of_its_highest_position() -> None:
    batch = [record(3, 10), record(7, 14), record(3, 12)]
    assert source_of(batch) == "t.dialtone.queues.v1:7"


@st.composite
def deliveries(draw: Any) -> list[list[tuple[int, int]]]:
    """The relay's records (store positions 1..n, each on a partition) as a consumer
    takes them: each partition's in order, the partitions interleaved in any way,
    cut into batches."""
    partitions = draw(st.lists(st.integers(0, PARTITIONS - 1), min_size=1, max_size=60))
    queues = {p: [pos for pos, q in enumerate(partitions, 1) if q == p] for p in set(partitions)}
    order: list[tuple[int, int]] = []
    while queues:
        p = draw(st.sampled_from(sorted(queues)))
        order.append((p, queues[p].pop(0)))
        if not queues[p]:
            del queues[p]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(order)), max_size=10))) | {len(order)})
    return [order[a:b] for a, b in zip([0, *cuts], cuts, strict=False) if order[a:b]]


@settings(deadline=None)
@given(deliveries())
def test_every_batch_moves_its_sources_row_and_rows_stay_one_per_partition(
        batches: list[list[tuple[int, int]]]) -> None:
    rows: dict[str, int] = {}
    for batch in batches:
        source = source_of([record(p, position) for p, position in batch])
        upto = max(position for _, position in batch)
        assert upto > rows.get(source, 0), (source, rows, batch)
        rows[source] = upto
    assert len(rows) <= PARTITIONS
