"""How a rebuild's page is shared out among its shards (streams/shards.py): each
aggregate's events all to one shard, in store order, and only the group's kinds;
what each shard reads counts every event once."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.envelope import EventEnvelope
from streams.shards import Share, from_pages

KINDS = frozenset({"agent", "queue"})


def split(page: list[EventEnvelope], kinds: frozenset[str], jobs: int) -> list[list[EventEnvelope]]:
    """Each shard's part of ``page``, as each reads it (``from_pages``)."""
    parts = []
    for n in range(jobs):
        read = list(from_pages([page])(Share(n, jobs, kinds)))
        assert [p.read for p in read] == ([len(page)] if page else [])
        assert [p.last for p in read] == ([page[-1].position] if page else [])
        parts.append([e for p in read for e in p.events])
    return parts


def envelope(kind: str, subject: int, position: int) -> EventEnvelope:
    return EventEnvelope(UUID(int=position), f"dialtone.{kind}.happened.v1", UUID(int=subject),
                         position, position, datetime(2026, 12, 4, tzinfo=UTC), {})


pages = st.lists(st.tuples(st.sampled_from(["agent", "queue", "call"]), st.integers(1, 40)),
                 max_size=80).map(lambda drawn: [envelope(kind, subject, n) for n, (kind, subject)
                                                 in enumerate(drawn, 1)])


@settings(deadline=None)
@given(pages, st.integers(1, 5))
def test_each_aggregate_goes_whole_to_one_shard_in_store_order(
        page: list[EventEnvelope], jobs: int) -> None:
    parts = split(page, KINDS, jobs)
    assert len(parts) == jobs
    owner = {e.subject: n for n, part in enumerate(parts) for e in part}
    assert all(owner[e.subject] == n for n, part in enumerate(parts) for e in part)
    for part in parts:
        assert [e.position for e in part] == sorted(e.position for e in part)
    assert sorted(e.position for part in parts for e in part) == \
        [e.position for e in page if e.kind in KINDS]


def test_the_same_aggregate_goes_to_the_same_shard_on_every_page() -> None:
    first = split([envelope("agent", 7, 1), envelope("queue", 8, 2)], KINDS, 3)
    later = split([envelope("queue", 8, 3), envelope("agent", 7, 4)], KINDS, 3)
    assert {e.subject: n for n, p in enumerate(first) for e in p} == \
        {e.subject: n for n, p in enumerate(later) for e in p}
