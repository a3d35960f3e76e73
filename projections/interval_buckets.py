"""The interval reports' 15-minute buckets (issue 11 §1), kept for the call-centre group.

Each bucket row holds, for one queue or agent, the **sums** projections/kpi.py's
SQL gives for the window ``[bucket_start, bucket_start + 15 min)``; the same
queries, run by this module, so a bucket cannot disagree with the live view.
Each UTC hour's four buckets are kept summed too (``HOURS``), rewritten with them;
hourly and daily reports add hours and buckets up at read time (api/queries/reports.py).

Two steps, so that the apply transaction stays short (recomputing there halved
the group's throughput and was most of the live stream's delivery latency):

* ``mark``, in the group's apply transaction (projections/callcentre.py): the
  bucket of each event folded is *dirty* (``interval_dirty``, its generation
  bumped). Same transaction as the fact rows and the position, so a crash
  loses no mark; marking again is idempotent in effect.
* ``refresh_dirty``, by a refresher (streams/refresher.py, in whichever process
  runs the projections; a rebuild or replay calls it before it swaps in): per
  tenant, in a transaction of its own (at most ``BATCH`` buckets, oldest first),
  recompute each dirty bucket from the fact tables (delete, then insert the kpi
  sums), mark it computed (``interval_marks``), and clear the dirty marks whose
  generation is still the one it read. An event committed meanwhile bumped its
  mark: that bucket stays dirty and is computed again (no lost update). A crash
  before the commit leaves every mark: the next refresh does the work.
* Until a bucket is refreshed, reports read it (and every bucket after the
  tenant's earliest dirty one) straight from the fact tables, so they are never
  stale, only slower.
* A bucket in which nothing happened has no mark and no rows, even when agents
  sat in one state or a call waited through it: a report reads such buckets
  straight from the fact tables with kpi's SQL (api/queries/reports.py), as it
  reads the bucket still running. So a quiet night costs nothing here.

Why a computed bucket stays right: a period still open, or a call still
waiting, counts up to the bucket's end (kpi's rule for a window). If it really
ends inside the bucket, that event is in the bucket and dirties it; if it ends
later, the count to the bucket's end was final. That holds when events are
folded in time order. An event folded *late* (older than buckets the tenant
already computed: out-of-order delivery, or another worker's partition running
ahead) may start or end a period or a wait those buckets counted without it,
so every computed bucket after the earliest dirty one is recomputed too. In
time order (live, or a rebuild in store order) that costs nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor, sql
from psycopg.rows import TupleRow

from projections import interval_sql, kpi, staging
from projections.registry import Connect

BUCKET = timedelta(minutes=15)
QUARTERS = ("interval_queue", "interval_agent", "interval_agent_state")
# Each 15-minute table's sums per UTC hour (interval_sql.ROLLUPS), for hourly and daily
# reports: rewritten whenever one of the hour's quarters is.
HOURS = tuple(f"{table}_hour" for table in QUARTERS)
NAMES = (*QUARTERS, *HOURS, "interval_marks", "interval_dirty")
_PER_HOUR = timedelta(hours=1) // BUCKET
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The handle time's parts (HANDLE_SPLIT), stored beside each bucket's kpi sums.
SPLIT = interval_sql.SPLIT
QUEUE_COLUMNS = interval_sql.QUEUE_COLUMNS
AGENT_COLUMNS = interval_sql.AGENT_COLUMNS


def floor(instant: datetime) -> datetime:
    """The start of the UTC 15-minute bucket holding ``instant``."""
    return start_of(number(instant))


def number(instant: datetime) -> int:
    """The UTC 15-minute bucket holding ``instant``, counted from the epoch (exact: a
    timedelta divided by one)."""
    return (instant - _EPOCH) // BUCKET


def start_of(bucket: int) -> datetime:
    return _EPOCH + BUCKET * bucket


def hour_of(instant: datetime) -> datetime:
    """The start of the UTC hour holding ``instant`` (whatever zone it is given in)."""
    return start_of(number(instant) // _PER_HOUR * _PER_HOUR)


def starts(since: datetime, until: datetime) -> list[datetime]:
    """The starts of the buckets from the one holding ``since`` to the one before ``until``."""
    found, at = [], floor(since)
    while at < until:
        found.append(at)
        at += BUCKET
    return found


class TouchedBuckets:
    """What a batch folded: per tenant, the 15-minute buckets of its events, each as
    its number since the epoch."""

    def __init__(self) -> None:
        self.buckets: defaultdict[str, set[int]] = defaultdict(set)

    def add(self, tenant: str, at: datetime) -> None:
        # Called for every event folded: keeping each time and flooring it at the end
        # cost 1.6 us an event against 0.6 (hashing an aware datetime, then ``floor``).
        self.buckets[tenant].add(number(at))

    def starts(self) -> list[tuple[str, datetime]]:
        """Each (tenant, bucket start) once, sorted."""
        return sorted((tenant, start_of(bucket))
                      for tenant, buckets in self.buckets.items() for bucket in buckets)


def mark(cur: Cursor[TupleRow], touched: TouchedBuckets) -> int:
    """Mark the buckets of the batch's events dirty (in the apply transaction); return how
    many. Sorted by (tenant, bucket), the order the refresher locks them in: a batch and
    a refresh waiting on each other's rows cannot deadlock. While a rebuild builds the
    group aside, a trigger carries each mark into its copy too (``carry_marks``)."""
    rows = touched.starts()
    cur.executemany("INSERT INTO interval_dirty AS d (tenant, bucket_start) VALUES (%s, %s)"
                    " ON CONFLICT (tenant, bucket_start)"
                    " DO UPDATE SET generation = d.generation + 1", rows)
    return len(rows)


# Buckets recomputed per tenant and transaction: a day. A big backlog (migration 0023
# marks every bucket ever computed) is worked off a transaction at a time, oldest first,
# each tenant in turn, instead of one transaction per tenant holding it all.
BATCH = 96


def refresh_dirty(conn: Connection[TupleRow], *, wait: bool = False,
                  batch: int = BATCH) -> int:
    """Recompute dirty buckets, a tenant and at most ``batch`` buckets per transaction;
    return how many buckets.

    Without ``wait`` (the refresher), one transaction per tenant: at most ``batch`` of
    its oldest buckets, the rest left dirty for the next call, so a backlog never holds
    the refresher (its heartbeat, its stop, the other tenants) for long; a tenant
    another refresher is serving is passed over (its marks stay for that one). With
    ``wait`` (a rebuild or replay must leave none behind), every tenant's every batch,
    waiting for any other refresher. The lock is per schema, so a rebuild's refresh
    aside does not wait for the live refresher."""
    if not conn.autocommit:
        raise ValueError("refresh_dirty needs an autocommit connection")  # a tenant per commit
    count = 0
    for (tenant,) in conn.execute(_TENANTS).fetchall():
        more = True
        while more:
            with conn.transaction(), conn.cursor() as cur:
                done, more = _refresh_tenant(cur, tenant, wait, batch)
            count += done
            more = more and wait
    return count


# The tenants with a dirty mark, one index probe each (a skip scan: a DISTINCT would
# read every mark, a million after migration 0023).
_TENANTS = """
WITH RECURSIVE t(tenant) AS (
    (SELECT tenant FROM interval_dirty ORDER BY tenant LIMIT 1)
    UNION ALL
    SELECT (SELECT d.tenant FROM interval_dirty d WHERE d.tenant > t.tenant
            ORDER BY d.tenant LIMIT 1) FROM t WHERE t.tenant IS NOT NULL)
SELECT tenant FROM t WHERE tenant IS NOT NULL
"""
_LOCK = "hashtextextended(current_schema() || ':interval:' || %s, 15)"


def _refresh_tenant(cur: Cursor[TupleRow], tenant: str, wait: bool,
                    batch: int) -> tuple[int, bool]:
    """Recompute the tenant's oldest ``batch`` buckets to do; return how many, and
    whether more are left."""
    # One refresher at a time per tenant: two recomputing the same bucket would both
    # delete and then both insert it.
    if wait:
        cur.execute(f"SELECT pg_advisory_xact_lock({_LOCK})", (tenant,))
    else:
        cur.execute(f"SELECT pg_try_advisory_xact_lock({_LOCK})", (tenant,))
        locked = cur.fetchone()
        if not (locked and locked[0]):
            return 0, False
    buckets, more = _to_do(cur, tenant, batch)
    if not buckets:
        return 0, False
    cur.execute("SELECT bucket_start, generation FROM interval_dirty WHERE tenant = %s"
                " AND bucket_start <= %s", (tenant, buckets[-1]))
    _compute(cur, tenant, buckets, cur.fetchall())
    if more:
        _carry_on(cur, tenant, buckets[-1])
    return len(buckets), more


def _compute(cur: Cursor[TupleRow], tenant: str, buckets: list[datetime],
             seen: list[tuple[datetime, int]]) -> None:
    """Recompute ``buckets``, mark them computed, clear the dirty marks ``seen`` (read
    with their generations before the recompute)."""
    _delete(cur, QUARTERS, tenant, buckets)
    recompute(cur, tenant, buckets)
    cur.executemany("INSERT INTO interval_marks (tenant, bucket_start) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING", [(tenant, b) for b in buckets])
    _clear(cur, tenant, sorted(seen))


def refresh_fresh(connect: Connect, jobs: int) -> int:
    """``refresh_dirty(wait=True)`` for tables just built from nothing (a rebuild's or
    replay's first pass), on ``jobs`` connections at once; return how many buckets.

    No bucket is computed yet, and every fact is in: each dirty bucket is computed
    once, in any order, so each tenant's dirty buckets are cut into batches of about
    ``BATCH`` (whole hours) shared out among the connections. They hold the tenant's
    lock shared: a ``refresh_dirty`` of the same tables waits for them. What is left dirty after
    (marks made meanwhile) and tables with a bucket computed already get
    ``refresh_dirty`` on one connection."""
    with connect() as conn:
        fresh = conn.execute("SELECT 1 FROM interval_marks LIMIT 1").fetchone() is None
        dirty = conn.execute("SELECT tenant, bucket_start FROM interval_dirty"
                             " ORDER BY tenant, bucket_start").fetchall() if fresh else []
    by_tenant: dict[str, list[datetime]] = defaultdict(list)
    for tenant, bucket in dirty:
        by_tenant[tenant].append(bucket)
    batches = [(tenant, batch) for tenant, buckets in by_tenant.items()
               for batch in _whole_hours(buckets)]
    count = 0
    if jobs > 1 and batches:
        with ThreadPoolExecutor(jobs, "refresh") as pool:
            count = sum(pool.map(lambda share: _compute_share(connect, share),
                                 [batches[n::jobs] for n in range(jobs)]))
    with connect() as conn:
        return count + refresh_dirty(conn, wait=True)


def _whole_hours(buckets: list[datetime]) -> list[list[datetime]]:
    """Sorted buckets cut into batches of about ``BATCH``, never inside an hour: batches
    computed at once then never rewrite the same hour (each from its own quarters)."""
    batches: list[list[datetime]] = []
    for bucket in buckets:
        if not batches or (len(batches[-1]) >= BATCH
                           and hour_of(bucket) != hour_of(batches[-1][-1])):
            batches.append([])
        batches[-1].append(bucket)
    return batches


def _compute_share(connect: Connect, batches: list[tuple[str, list[datetime]]]) -> int:
    with connect() as conn:
        for tenant, buckets in batches:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"SELECT pg_advisory_xact_lock_shared({_LOCK})", (tenant,))
                cur.execute("SELECT bucket_start, generation FROM interval_dirty"
                            " WHERE tenant = %s AND bucket_start = ANY(%s)", (tenant, buckets))
                _compute(cur, tenant, buckets, cur.fetchall())
    return sum(len(buckets) for _, buckets in batches)


def _to_do(cur: Cursor[TupleRow], tenant: str, batch: int) -> tuple[list[datetime], bool]:
    """The tenant's oldest ``batch`` buckets to recompute, and whether there are more:
    its dirty buckets, and every computed bucket after the earliest dirty one (folded
    late: computed buckets after it may have counted without it; module docstring).
    Two index scans, each stopping after ``batch`` + 1 rows, however big the backlog."""
    cur.execute("SELECT bucket_start FROM interval_dirty WHERE tenant = %s"
                " ORDER BY bucket_start LIMIT %s", (tenant, batch + 1))
    dirty = [r[0] for r in cur.fetchall()]
    if not dirty:
        return [], False
    cur.execute("SELECT bucket_start FROM interval_marks WHERE tenant = %s"
                " AND bucket_start > %s ORDER BY bucket_start LIMIT %s",
                (tenant, dirty[0], batch + 1))
    found = sorted(set(dirty) | {r[0] for r in cur.fetchall()})
    return found[:batch], len(found) > batch


def _carry_on(cur: Cursor[TupleRow], tenant: str, last: datetime) -> None:
    """A batch stopped at ``last`` with more to do: mark the next computed bucket dirty
    (if it is not), so the next batch starts from it and takes the computed buckets after
    it (the rule ``_to_do`` follows), and reports keep reading from it on straight from
    the fact tables. One bucket is enough; after ``_clear``, so marks are locked in
    bucket order as the appliers lock them."""
    cur.execute(f"SET LOCAL {_REFRESHING} = 'on'")  # not a new fact: not carried aside
    cur.execute("INSERT INTO interval_dirty (tenant, bucket_start)"
                " SELECT tenant, bucket_start FROM interval_marks WHERE tenant = %s"
                " AND bucket_start > %s ORDER BY bucket_start LIMIT 1"
                " ON CONFLICT DO NOTHING", (tenant, last))


def _clear(cur: Cursor[TupleRow], tenant: str, seen: list[tuple[datetime, int]]) -> None:
    """Clear the marks served, last and in bucket order (an applier's row locks are
    waited for only this long); a mark marked again since it was read stays."""
    starts_, generations = [b for b, _ in seen], [g for _, g in seen]
    cur.execute("SELECT 1 FROM interval_dirty WHERE tenant = %s AND bucket_start = ANY(%s)"
                " ORDER BY bucket_start FOR UPDATE", (tenant, starts_))
    cur.execute("DELETE FROM interval_dirty d USING unnest(%s::timestamptz[], %s::bigint[])"
                " AS s(bucket_start, generation) WHERE d.tenant = %s"
                " AND d.bucket_start = s.bucket_start AND d.generation = s.generation",
                (starts_, generations, tenant))


# Set in a refresher's transaction: the marks it makes itself (``_carry_on``) say the
# live buckets are behind, not that a fact changed, so a copy built aside needs none.
_REFRESHING = "dialtone.interval_refresh"
DIRTY = "interval_dirty"


def carry_marks(conn: Connection[Any], schema: str) -> None:
    """While the group is rebuilt aside in ``schema``: every mark made in the live
    ``interval_dirty`` from now on is made in the copy's too, by a trigger.

    The calls group marks a handling's bucket when its call's hold changes
    (projections/calls.py); it writes to the live tables, whatever a rebuild builds
    aside, so the copy would miss a hold that arrives after it computed the bucket,
    even if the live refresher already served (and cleared) the live mark by the swap.
    Creating the trigger waits for the transactions marking now (its lock conflicts
    with theirs): those committed their events first, so the copy, which computes
    after this, reads them; every later mark fires it. The trigger goes with the live
    table the swap drops; if the rebuild fails, with the copy's schema (the next
    rebuild drops it). Its function lives in ``schema``: ``<schema>.carry_mark``."""
    target = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '60s'")  # bounded: marking transactions are short
        conn.execute(sql.SQL("""
CREATE FUNCTION {schema}.carry_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting({refreshing}, true) IS DISTINCT FROM 'on' THEN
        INSERT INTO {schema}.{dirty} AS d (tenant, bucket_start)
        VALUES (NEW.tenant, NEW.bucket_start)
        ON CONFLICT (tenant, bucket_start) DO UPDATE SET generation = d.generation + 1;
    END IF;
    RETURN NULL;
END $$""").format(schema=target, refreshing=sql.Literal(_REFRESHING),
                  dirty=sql.Identifier(DIRTY)))
        conn.execute(sql.SQL(
            "CREATE TRIGGER {} AFTER INSERT OR UPDATE ON public.{} FOR EACH ROW"
            " EXECUTE FUNCTION {}.carry_mark()").format(
                sql.Identifier(f"carry_to_{schema}"), sql.Identifier(DIRTY), target))


def vars_of(sums: Any) -> dict[str, Any]:
    return {f.name: getattr(sums, f.name) for f in fields(sums)}


def add_split(queues: dict[UUID, dict[str, Any]], agents: dict[UUID, dict[str, Any]],
              split: list[dict[str, Any]]) -> None:
    """Talk, hold and after-call time of the handled calls, into their queue's and
    agent's sums (the reports' part read from the fact tables, api/queries/reports.py;
    the stored buckets get them in SQL, projections/interval_sql.py)."""
    for r in split:
        targets = [agents.setdefault(r["agent_id"], vars_of(kpi.AgentSums()))]
        if r["queue_id"] is not None:
            targets.append(queues.setdefault(r["queue_id"], vars_of(kpi.QueueSums())))
        for target in targets:
            for name in SPLIT:
                target[name] = target.get(name, 0.0) + r[name]


def recompute(cur: Cursor[TupleRow], tenant: str,
              buckets: Sequence[datetime] | datetime) -> None:
    """Write the rows of the tenant's ``buckets`` (one, or a batch): kpi's sums over each
    (``refresh_dirty`` has deleted the old ones and marks them computed), then their
    hours again from the quarters stored. One statement per table for the whole batch,
    computed and written in the database (projections/interval_sql.py)."""
    batch = [buckets] if isinstance(buckets, datetime) else list(buckets)
    params = {"tenant": tenant, "buckets": batch}
    for statement in (interval_sql.INSERT_QUEUES, interval_sql.INSERT_AGENTS,
                      interval_sql.INSERT_STATES):
        cur.execute(statement, params)
    hours = sorted({hour_of(bucket) for bucket in batch})
    _delete(cur, HOURS, tenant, hours)
    # Each hour's quarters by the key's range (interval_sql's LATERAL), scans kept off
    # too: in a build from scratch the tables have no statistics yet (auto_explain
    # found all of the tenant's rows read once per hour, 0.8 s a batch and growing).
    with staging.keyed_lookups(cur):
        for statement in interval_sql.ROLLUPS.values():
            cur.execute(statement, {"tenant": tenant, "hours": hours})


def _delete(cur: Cursor[TupleRow], tables: Sequence[str], tenant: str,
            bucket_starts: list[datetime]) -> None:
    """The tenant's rows of ``tables`` starting at ``bucket_starts``."""
    for table in tables:
        cur.execute(f"DELETE FROM {table} WHERE tenant = %s"  # noqa: S608
                    " AND bucket_start = ANY(%s)", (tenant, bucket_starts))


def exact_seconds(value: Any) -> Any:
    """Seconds to the microsecond. They are sums of differences of timestamps, which
    PostgreSQL keeps to the microsecond, so this is their exact value: without it the
    last digits follow the order PostgreSQL happened to sum the rows in, and a live
    bucket and its rebuild differed (616.2820470000001 against 616.282047)."""
    return round(value, 6) if isinstance(value, float) else value
