"""The SQL that computes a batch of 15-minute interval buckets in the database.

projections/interval_buckets.py recomputes the dirty buckets a batch at a time;
these three statements write the batch's rows of interval_queue,
interval_agent and interval_agent_state straight from the fact tables, one
statement per table for the whole batch: kpi's own window queries
(projections/kpi_sql.py) run for each bucket of the batch in a LATERAL join,
so a bucket holds exactly what the live view's formulas give for its window.
Before, each bucket's rows came back to Python and were copied in again, a row
per logged-in agent and state: most of the refresher's time (a cProfile of
``bench.reports --days 2``: 17 of its 30 s writing rows, 12 s reading them).

What the Python did, these do alike: a queue's or agent's missing parts are 0
(an outer join), an agent with nothing but zeros gets no row, a queue row is
written as QUEUE_SUMS gives it, and seconds are rounded to the microsecond as
``exact_seconds`` rounds them: ``round(x * 1e6) / 1e6`` in double precision. A sum
of microseconds is within a rounding error of a whole number of them, so ``round``
finds that number N exactly, and N / 1e6, one correctly rounded division, is the
double nearest N microseconds, as Python's ``round(x, 6)`` gives. The same through
numeric (``round(x::numeric, 6)::float8``, formatted to 15 digits and read back)
was a quarter of a month's refresh (bench.reports, 2026-12-05).
"""

from __future__ import annotations

from dataclasses import fields

from projections import kpi

# Every name put into these statements is a constant of this module or kpi's (S608).

SPLIT = ("talk_s", "hold_s", "after_call_s")
# The batch's windows: one per bucket start, 15 minutes each.
_WINDOWS = ("(SELECT b AS since, b + interval '15 minutes' AS until"
            " FROM unnest(%(buckets)s::timestamptz[]) AS b) AS w")


def per_window(query: str) -> str:
    """A kpi query (asyncpg placeholders: $1 tenant, $2 since, $3 until) over the
    window ``w`` of the LATERAL join it is put in."""
    return query.replace("$1", "%(tenant)s").replace("$2", "w.since").replace("$3", "w.until")


def _floats(sums: type) -> set[str]:
    return {f.name for f in fields(sums) if "float" in str(f.type)} | set(SPLIT)


# The sums that are a maximum over a union of windows, not a sum (interval_reports).
MAXIMA = ("longest_wait_s",)


def _micro(seconds: str) -> str:
    """An SQL expression of seconds, rounded to the microsecond (module docstring)."""
    return f"round({seconds} * 1e6::float8) / 1e6::float8"


def _exact(column: str, floats: set[str]) -> str:
    return _micro(f"x.{column}") if column in floats else f"x.{column}"


def _insert(table: str, key: str, columns: tuple[str, ...], floats: set[str], inner: str,
            where: str = "") -> str:
    return (f"INSERT INTO {table} (tenant, bucket_start, {key}, {', '.join(columns)})\n"
            f"SELECT %(tenant)s, w.since, x.{key}, "
            f"{', '.join(_exact(c, floats) for c in columns)}\n"
            f"FROM {_WINDOWS} CROSS JOIN LATERAL (\n{inner}\n) AS x{where}")


def _zero(alias: str, column: str) -> str:
    return f"coalesce({alias}.{column}, 0) AS {column}"


def _split_by(key: str, where: str = "") -> str:
    sums = ", ".join(f"sum(sp.{c}) AS {c}" for c in SPLIT)
    return (f"SELECT sp.{key}, {sums} FROM ({per_window(kpi.HANDLE_SPLIT)}) AS sp"  # noqa: S608
            f"{where} GROUP BY sp.{key}")


QUEUE_COLUMNS = (*(f.name for f in fields(kpi.QueueSums)), *SPLIT)
AGENT_COLUMNS = (*(f.name for f in fields(kpi.AgentSums)), *SPLIT)

_QUEUE_PARTS = ", ".join(
    f"q.{c}" if c in MAXIMA
    else _zero("s" if c in SPLIT else "q", c) for c in QUEUE_COLUMNS)
INSERT_QUEUES = _insert(
    "interval_queue", "queue_id", QUEUE_COLUMNS, _floats(kpi.QueueSums), f"""
SELECT queue_id, {_QUEUE_PARTS}
FROM ({per_window(kpi.QUEUE_SUMS)}) AS q
FULL JOIN ({_split_by("queue_id", " WHERE sp.queue_id IS NOT NULL")}) AS s USING (queue_id)""")  # noqa: S608

_AGENT_FROM = {"staffed_s": "a", "paused_s": "a", "on_call_s": "a", "wrap_up_s": "a",
               "handled": "h", "handle_s": "h", "missed_offers": "m",
               **dict.fromkeys(SPLIT, "s")}
INSERT_AGENTS = _insert(
    "interval_agent", "agent_id", AGENT_COLUMNS, _floats(kpi.AgentSums), f"""
SELECT agent_id, {", ".join(_zero(_AGENT_FROM[c], c) for c in AGENT_COLUMNS)}
FROM ({per_window(kpi.AGENT_SUMS)}) AS a
FULL JOIN ({per_window(kpi.AGENT_HANDLED)}) AS h USING (agent_id)
FULL JOIN ({per_window(kpi.AGENT_MISSED)}) AS m USING (agent_id)
FULL JOIN ({_split_by("agent_id")}) AS s USING (agent_id)""",  # noqa: S608
    # an agent logged out all along, with nothing handled or missed: no row
    "\nWHERE " + " OR ".join(f"x.{c} <> 0" for c in AGENT_COLUMNS))

INSERT_STATES = _insert("interval_agent_state", "agent_id", ("state", "reason", "seconds"),
                        {"seconds"}, per_window(kpi.AGENT_STATE_TIMES))

# The hour tables (migrations/schema/0026_interval_hours.sql): each row the sum of its
# table's rows in one UTC hour, for hourly and daily reports to read a quarter of the
# rows (api/queries/reports.py). Rewritten with the quarters, in the same transaction,
# from the quarters stored: seconds rounded to the microsecond as above, so an hour
# holds the same value however its quarters were summed; the longest wait a max.
# Each hour's quarters are read by the key's range, in a LATERAL subquery: as a plain
# join, in a build from scratch (tables without statistics yet) the planner read all
# of the tenant's rows once per hour (0.8 s a day's hours at a week into a month,
# growing; auto_explain).
_HOURS = ("(SELECT h AS since, h + interval '1 hour' AS until"
          " FROM unnest(%(hours)s::timestamptz[]) AS h) AS w")


def _rollup(table: str, keys: tuple[str, ...], columns: tuple[str, ...],
            floats: set[str]) -> str:
    def total(column: str) -> str:
        if column in MAXIMA:
            return f"max(t.{column}) AS {column}"
        if column in floats:
            return f"{_micro(f'sum(t.{column})')} AS {column}"
        return f"sum(t.{column}) AS {column}"
    key = ", ".join(f"t.{k}" for k in keys)
    return (f"INSERT INTO {table}_hour (tenant, bucket_start, {', '.join((*keys, *columns))})\n"
            f"SELECT %(tenant)s, w.since, x.* FROM {_HOURS} CROSS JOIN LATERAL (\n"
            f"SELECT {key}, {', '.join(map(total, columns))}\n"
            f"FROM {table} t WHERE t.tenant = %(tenant)s"
            " AND t.bucket_start >= w.since AND t.bucket_start < w.until\n"
            f"GROUP BY {key}\n) AS x")


ROLLUPS = {
    "interval_queue": _rollup("interval_queue", ("queue_id",), QUEUE_COLUMNS,
                              _floats(kpi.QueueSums)),
    "interval_agent": _rollup("interval_agent", ("agent_id",), AGENT_COLUMNS,
                              _floats(kpi.AgentSums)),
    "interval_agent_state": _rollup("interval_agent_state", ("agent_id", "state", "reason"),
                                    ("seconds",), {"seconds"}),
}
