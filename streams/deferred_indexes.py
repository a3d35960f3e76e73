"""Indexes a first pass builds once, at its end, instead of keeping them up to date
event by event.

A rebuild's or replay's first pass fills empty tables with the whole history. An
index that the group's apply never reads (a report's, a timeline's, the live
feed's) only costs it: every row inserted or updated descends it, and a GiST index
over a visit's time range costs more than the row. Built once over the full table,
it is a sort. So the pass drops them from the empty tables, and builds them again
when every page is in, on the pass's connections at once, before the settle (the
interval buckets' refresh reads them) and before anything else reads the tables.
Then it analyzes those tables, so that the settle's plans see a full table, not
the empty one the load started from.

The group declares which ones (``ProjectionGroup.deferred_indexes``); the indexes
its apply looks rows up by (keys, an agent's open period, a call's handlings) stay.
A pass that fails leaves its copy without them: a rebuild starts its copy over, and
a replay's schema is incomplete anyway (docs/history.md).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from psycopg import sql

from projections.registry import Connect

# The indexes among ``names`` on tables of the connection's first schema (a rebuild's
# copy, or public), with what builds them again, their table and their access method.
_FIND = """
SELECT i.indexname, i.indexdef, quote_ident(i.tablename), a.amname
FROM pg_indexes i
JOIN pg_class c ON c.oid = format('%%I.%%I', i.schemaname, i.indexname)::regclass
JOIN pg_am a ON a.oid = c.relam
WHERE i.schemaname = current_schema() AND i.indexname = ANY(%s) ORDER BY i.indexname
"""
# The builds are shared out longest first, so that no connection is left with a long
# one while the others are done (a month's twelve, one at a time: GiST over 1.4
# million periods 5.3 s, B-trees 0.4-4.1 s by their table's size, BRIN 0.2-0.3 s).
# A GiST build inserts row by row; a B-tree's is a sort of its table; a BRIN's a scan.
_AM_ORDER = {"gist": 0, "btree": 1}  # anything else (BRIN) last
_SIZES = "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) AS t"
# Room to sort a month's index in memory (PostgreSQL's default is 64 MB), for the
# build's own session only.
_SORT_MEMORY = "256MB"


@contextmanager
def deferred(connect: Connect, names: Collection[str], jobs: int) -> Iterator[None]:
    """Drop the indexes ``names`` of the tables the connections of ``connect`` write
    (their first schema) for the block, then build them on ``jobs`` connections.
    Not built again if the block raises (see above)."""
    if not names:
        yield
        return
    with connect() as conn:
        found: list[tuple[str, str, str, str]] = conn.execute(
            _FIND, (sorted(names),)).fetchall()
        for name, *_ in found:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    tables = list(dict.fromkeys(table for _, _, table, _ in found))
    with connect() as conn:  # the tables' sizes now that they are full
        size = dict(conn.execute(_SIZES, (tables,)).fetchall())
    found.sort(key=lambda f: (_AM_ORDER.get(f[3], len(_AM_ORDER)), -size[f[2]], f[0]))
    run(connect, [definition for _, definition, _, _ in found], jobs)
    run(connect, [f"ANALYZE {table}" for table in tables], jobs)


def run(connect: Connect, statements: Sequence[str], jobs: int) -> None:
    """Run the statements (``CREATE INDEX`` from pg_indexes, ``ANALYZE``), ``jobs`` at a
    time, each on a connection of its own."""
    def one(statement: str) -> None:
        with connect() as conn:
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(
                sql.Literal(_SORT_MEMORY)))
            conn.execute(sql.SQL(statement))  # PostgreSQL's own text (and names it quoted)

    with ThreadPoolExecutor(max(1, min(jobs, len(statements))),
                            thread_name_prefix="index-") as pool:
        for done in [pool.submit(one, s) for s in statements]:
            done.result()
