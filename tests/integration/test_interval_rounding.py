"""The interval tables' seconds, rounded to the microsecond in PostgreSQL
(projections/interval_sql.py), are the values Python's ``exact_seconds`` gives for the
same sums: a bucket computed in the database and the live view's figure agree."""

from __future__ import annotations

import random

import psycopg

from projections import interval_buckets, interval_sql


def microsecond_sums(count: int, seed: int) -> list[float]:
    """Sums of periods to the microsecond, in a random order, as SUM gives them: the
    last digits vary with the order (616.2820470000001 against 616.282047)."""
    rng = random.Random(seed)
    sums = []
    for _ in range(count):
        parts = [rng.randrange(0, 900_000_000) / 1e6 for _ in range(rng.randrange(1, 40))]
        sums.append(sum(parts))
    return sums + [rng.randrange(0, 10**12) / 1e6 for _ in range(count // 4)]


def test_the_database_rounds_seconds_as_python_does(database_url: str) -> None:
    sums = microsecond_sums(20_000, seed=7)
    exact = interval_sql._exact("s", {"s"})
    with psycopg.connect(database_url) as conn:
        rounded = [value for (value,) in conn.execute(
            f"SELECT {exact} FROM unnest(%s::float8[]) WITH ORDINALITY AS x(s, n)"
            " ORDER BY n", (sums,)).fetchall()]
    assert rounded == [interval_buckets.exact_seconds(s) for s in sums]
    assert any(s != interval_buckets.exact_seconds(s) for s in sums)  # there was rounding
