"""bench.live's matching of commits to the projection batches that carried them.

The live view's latency target is judged on these figures, so the matching is
tested like product code: a commit belongs to the first batch that names its call
and reaches its position, never to a batch heard earlier or to a guess.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from bench.live_latency import delivery_latencies, match_projected, projected_latencies
from projections.touched import Touched


def _heard(at: float, source: str, after: int, upto: int,
           ids: set[UUID] | None) -> tuple[float, str]:
    return at, Touched(source, after, upto, None if ids is None else frozenset(ids)).payload()


def test_a_commit_is_carried_by_the_first_batch_naming_its_call_and_reaching_it() -> None:
    call, other = uuid4(), uuid4()
    commits = [(10.0, 5), (10.5, 9)]  # the call's enqueue (5), then its abandon (9)
    heard = [
        _heard(10.1, "kafka:q:3", 0, 4, {other}),  # another call's batch
        _heard(10.2, "kafka:q:7", 0, 6, {call}),  # the enqueue's batch: reaches 5, not 9
        (10.3, "not a payload"),  # ignored
        _heard(10.7, "kafka:q:1", 2, 11, {call, other}),  # the abandon's
    ]

    seen = match_projected(commits, {5: call, 9: call}, heard)

    assert seen.carried == {5: ("kafka:q:7", 6), 9: ("kafka:q:1", 11)}
    assert projected_latencies(commits, seen) == [pytest.approx(0.2), pytest.approx(0.2)]


def test_a_batch_without_ids_carries_only_what_its_range_of_the_log_holds() -> None:
    inside, outside = uuid4(), uuid4()
    commits = [(1.0, 3), (1.0, 8)]
    heard = [_heard(1.1, "store:log", 5, 9, None)]  # (5, 9]: 8 is in it, 3 is not

    seen = match_projected(commits, {3: outside, 8: inside}, heard)

    assert seen.carried == {8: ("store:log", 9)}
    assert 3 not in seen.first_seen  # left unmatched (and counted), not guessed


def test_a_client_has_a_commit_once_its_view_reaches_the_carrying_batch() -> None:
    call = uuid4()
    commits = [(0.0, 5)]
    seen = match_projected(commits, {5: call}, [_heard(0.05, "kafka:q:7", 0, 6, {call})])
    client = [
        (0.01, {"kafka:q:7": 0}),  # the first snapshot
        (0.08, {"kafka:q:7": 0, "kafka:q:2": 9}),  # another partition moved past 5
        (0.12, {"kafka:q:7": 6, "kafka:q:2": 9}),  # the carrying batch's source reached
    ]

    assert delivery_latencies(commits, [client], seen) == [pytest.approx(0.12)]
