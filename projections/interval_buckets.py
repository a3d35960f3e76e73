"""The interval reports' 15-minute buckets (issue 11 §1), kept by the call-centre group.

Each bucket row holds, for one queue or agent, the **sums** projections/kpi.py's
SQL gives for the window ``[bucket_start, bucket_start + 15 min)``; the same
queries, run by this module, so a bucket cannot disagree with the live view.
Hourly and daily reports add buckets up at read time (api/queries/reports.py).

How a batch keeps them right, exactly once in effect:

* The fold (projections/callcentre.py) tells ``Touched`` each event it folds:
  its tenant and its time. The bucket holding it is *dirty*.
* ``refresh`` recomputes each dirty bucket of the tenant from the fact tables
  (delete, then insert the kpi sums), in the batch's transaction, and marks it
  computed (``interval_marks``). Recomputing is idempotent: a re-delivered or
  replayed batch folds nothing new and leaves the same rows; a rebuild
  truncates these tables with the group's others.
* A bucket in which nothing happened has no mark and no rows, even when agents
  sat in one state or a call waited through it: a report reads such buckets
  straight from the fact tables with kpi's SQL (api/queries/reports.py), as it
  reads the bucket still running. So a quiet night costs nothing here.

Why a computed bucket stays right: a period still open, or a call still
waiting, counts up to the bucket's end (kpi's rule for a window). If it really
ends inside the bucket, that event is in the bucket and recomputes it; if it
ends later, the count to the bucket's end was final. That holds when events
are folded in time order. An event folded *late* (older than buckets the
tenant already computed: out-of-order delivery, or another worker's partition
running ahead) may start or end a period or a wait those buckets counted
without it, so every computed bucket after it is recomputed too. In time
order (live, or a rebuild in store order) that costs nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow, dict_row

from projections import kpi

BUCKET = timedelta(minutes=15)
NAMES = ("interval_queue", "interval_agent", "interval_agent_state", "interval_marks")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUEUE_COLUMNS = (*(f.name for f in fields(kpi.QueueSums)), "talk_s", "after_call_s")
AGENT_COLUMNS = (*(f.name for f in fields(kpi.AgentSums)), "talk_s", "after_call_s")


def floor(instant: datetime) -> datetime:
    """The start of the UTC 15-minute bucket holding ``instant``."""
    return instant - (instant - _EPOCH) % BUCKET


def starts(since: datetime, until: datetime) -> list[datetime]:
    """The starts of the buckets from the one holding ``since`` to the one before ``until``."""
    found, at = [], floor(since)
    while at < until:
        found.append(at)
        at += BUCKET
    return found


class Touched:
    """What a batch folded: per tenant, the times of the events."""

    def __init__(self) -> None:
        self.times: defaultdict[str, set[datetime]] = defaultdict(set)

    def add(self, tenant: str, at: datetime) -> None:
        self.times[tenant].add(at)


def refresh(cur: Cursor[TupleRow], touched: Touched) -> int:
    """Recompute the touched tenants' dirty buckets; return how many."""
    count = 0
    for tenant in sorted(touched.times):
        # One applier at a time per tenant: two recomputing the same bucket would
        # both delete and then both insert it.
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 15))",
                    (f"interval:{tenant}",))
        dirty = {floor(at) for at in touched.times[tenant]}
        cur.execute("SELECT max(bucket_start) FROM interval_marks WHERE tenant = %s", (tenant,))
        row = cur.fetchone()
        last = row[0] if row else None
        if last is not None and min(dirty) < last:  # folded late: see the module's docstring
            cur.execute("SELECT bucket_start FROM interval_marks WHERE tenant = %s"
                        " AND bucket_start > %s", (tenant, min(dirty)))
            dirty.update(r[0] for r in cur.fetchall())
        buckets = sorted(dirty)
        for table in NAMES[:3]:
            cur.execute(f"DELETE FROM {table} WHERE tenant = %s"  # noqa: S608
                        " AND bucket_start = ANY(%s)", (tenant, buckets))
        for bucket in buckets:
            recompute(cur, tenant, bucket)
        cur.executemany("INSERT INTO interval_marks (tenant, bucket_start) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING", [(tenant, b) for b in buckets])
        count += len(dirty)
    return count


def as_psycopg(query: str) -> str:
    """kpi's SQL uses asyncpg's ``$n`` placeholders; psycopg takes ``%(pn)s``."""
    return re.sub(r"\$(\d+)", r"%(p\1)s", query)


def window_sums(cur: Cursor[Any], tenant: str, window: kpi.Window
                ) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]],
                           list[dict[str, Any]]]:
    """kpi's sums for one window: per queue, per agent (columns as the tables'),
    and the agents' time by state and reason."""
    params = {"p1": tenant, "p2": window.since, "p3": window.until}
    with cur.connection.cursor(row_factory=dict_row) as rows:
        def fetch(query: str) -> list[dict[str, Any]]:
            rows.execute(as_psycopg(query), params)
            return rows.fetchall()

        queues = {r["queue_id"]: vars_of(kpi.QueueSums.of_row(r)) for r in fetch(kpi.QUEUE_SUMS)}
        agents: defaultdict[UUID, dict[str, Any]] = defaultdict(dict)
        for query in (kpi.AGENT_SUMS, kpi.AGENT_HANDLED, kpi.AGENT_MISSED):
            for r in fetch(query):
                agents[r["agent_id"]].update({k: v for k, v in r.items() if k != "agent_id"})
        agent_rows = {a: vars_of(kpi.AgentSums(**values)) for a, values in agents.items()}
        add_split(queues, agent_rows, fetch(kpi.HANDLE_SPLIT))
        return queues, agent_rows, fetch(kpi.AGENT_STATE_TIMES)


def vars_of(sums: Any) -> dict[str, Any]:
    return {f.name: getattr(sums, f.name) for f in fields(sums)}


def add_split(queues: dict[UUID, dict[str, Any]], agents: dict[UUID, dict[str, Any]],
              split: list[dict[str, Any]]) -> None:
    """Talk and after-call time of the handled calls, into their queue's and agent's sums."""
    for r in split:
        targets = [agents.setdefault(r["agent_id"], vars_of(kpi.AgentSums()))]
        if r["queue_id"] is not None:
            targets.append(queues.setdefault(r["queue_id"], vars_of(kpi.QueueSums())))
        for target in targets:
            for name in ("talk_s", "after_call_s"):
                target[name] = target.get(name, 0.0) + r[name]


def recompute(cur: Cursor[TupleRow], tenant: str, bucket: datetime) -> None:
    """Write one bucket's rows of the tenant: kpi's sums over it (``refresh`` has
    deleted the old ones and marks it computed)."""
    queues, agents, states = window_sums(cur, tenant, kpi.Window(bucket, bucket + BUCKET))
    _insert(cur, "interval_queue", "queue_id", QUEUE_COLUMNS, tenant, bucket,
            list(queues.items()))
    _insert(cur, "interval_agent", "agent_id", AGENT_COLUMNS, tenant, bucket,
            [(a, v) for a, v in agents.items() if any(v.values())])
    _insert(cur, "interval_agent_state", "agent_id", ("state", "reason", "seconds"), tenant,
            bucket, [(r["agent_id"], r) for r in states])


def _insert(cur: Cursor[TupleRow], table: str, key: str, columns: tuple[str, ...], tenant: str,
            bucket: datetime, rows: Sequence[tuple[UUID, Mapping[str, Any]]]) -> None:
    """COPY the rows in (a bucket holds a row per logged-in agent: hundreds)."""
    if not rows:
        return
    names = ", ".join(("tenant", "bucket_start", key, *columns))
    with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for entity, values in rows:
            copy.write_row((tenant, bucket, entity,
                            *(exact_seconds(values.get(c, 0)) for c in columns)))


def exact_seconds(value: Any) -> Any:
    """Seconds to the microsecond. They are sums of differences of timestamps, which
    PostgreSQL keeps to the microsecond, so this is their exact value: without it the
    last digits follow the order PostgreSQL happened to sum the rows in, and a live
    bucket and its rebuild differed (616.2820470000001 against 616.282047)."""
    return round(value, 6) if isinstance(value, float) else value
