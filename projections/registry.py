"""A projection group: projections applied together from one batch of events.

Runners (the in-process runner, the Faust workers, rebuild) know groups, not
individual projections. A group receives every envelope of a batch, keeps the
kinds it handles, and records its position for the batch's source in the same
transaction as its rows, even when none of the batch was for it, so that a
runner can resume from the lowest position of its groups.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import Connection, sql

from projections.envelope import EventEnvelope

ApplyBatch = Callable[[Connection[Any], Sequence[EventEnvelope], str], int]
Connect = Callable[[], Connection[Any]]  # a new autocommit connection to a group's tables


class Settle(Protocol):
    """Work a group's apply leaves for later, done in transactions of its own on an
    autocommit connection (the call-centre group's interval buckets); returns how much
    it did. ``wait``: leave nothing behind, waiting for any other settler (a rebuild)."""

    def __call__(self, conn: Connection[Any], /, *, wait: bool = False) -> int: ...


@dataclass(frozen=True)
class ProjectionGroup:
    names: tuple[str, ...]  # the projection (table) names; names[0] holds the position
    kinds: frozenset[str]  # aggregate kinds it reads, e.g. {"call"}
    apply: ApplyBatch  # applies a batch in one transaction (autocommit connection)
    # Deferred work apply marked (streams/refresher.py runs it beside the runners; a
    # rebuild or replay runs it with wait=True before it swaps in); None: nothing deferred.
    settle: Settle | None = None
    # Its apply writes, for one aggregate's events, only that aggregate's rows (and
    # marks or positions that commute): disjoint sets of aggregates can then be applied
    # on separate connections at once (streams/shards.py, a rebuild's first pass).
    per_aggregate: bool = False
    # The settle for tables just built from nothing, on that many connections at once
    # (a rebuild's first pass); None: ``settle`` on one.
    settle_fresh: Callable[[Connect, int], int] | None = None
    # Its apply for a first pass into empty tables, from the store in store order (each
    # event once, an aggregate's in version order): it may skip deduplicating; None:
    # ``apply``.
    apply_fresh: ApplyBatch | None = None
    # Indexes on its tables that its apply never reads (the reports', the timelines'):
    # a first pass into empty tables builds them once at its end (streams/deferred_indexes.py).
    deferred_indexes: frozenset[str] = frozenset()


# -- building a group aside and swapping it in (streams/rebuild.py, dialtone replay) -------

# Tables a group writes besides its names (the group's apply keeps them in step
# with names[...]): they are built aside and swapped with the group.
COMPANIONS: dict[str, tuple[str, ...]] = {
    "call_events": ("call_projection_gaps",),
    "callcentre_events": ("queue_members", "queue_calls"),
}
POSITIONS = "projection_positions"


def tables(group: ProjectionGroup) -> tuple[str, ...]:
    """Every table the group's apply writes (its position rows aside)."""
    return (*group.names, *COMPANIONS.get(group.names[0], ()))


def create_aside(conn: Connection[Any], schema: str, names: Sequence[str], *,
                 replace: bool = True) -> None:
    """A fresh ``schema`` holding an empty copy of each public table of ``names``,
    and of projection_positions: same columns, defaults, checks, keys and indexes
    (under their own names, so that a table swapped into public keeps the names
    migrations refer to), hypertable on TimescaleDB as the public one.

    A connection whose search_path starts with ``schema`` then applies a group
    there: its unqualified table names resolve to the copies first, and to public
    for everything else (tenants, the other groups' tables). ``replace``: drop
    ``schema`` first if it exists (else creating it fails)."""
    target = sql.Identifier(schema)
    if replace:  # what a rebuild that stopped half-way left
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(target))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(target))
    for name in (*names, POSITIONS):
        conn.execute(sql.SQL("CREATE TABLE {}.{} (LIKE public.{} INCLUDING ALL EXCLUDING INDEXES)")
                     .format(target, sql.Identifier(name), sql.Identifier(name)))
        for statement in _keys_and_indexes(conn, schema, name):
            conn.execute(statement)
        _hypertable(conn, schema, name)


# Keys and unique constraints (with the index behind them), then plain indexes.
_CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
WHERE conrelid = ('public.' || quote_ident(%s))::regclass AND contype IN ('p', 'u', 'x')
ORDER BY conname
"""
_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = ('public.' || quote_ident(%s))::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid
"""


Statement = sql.Composed | sql.SQL


def _keys_and_indexes(conn: Connection[Any], schema: str, name: str) -> list[Statement]:
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    statements: list[Statement] = [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(table, sql.Identifier(conname))
        + sql.SQL(definition)
        for conname, definition in conn.execute(_CONSTRAINTS, (name,)).fetchall()]
    for (definition,) in conn.execute(_INDEXES, (name,)).fetchall():
        # "CREATE INDEX x ON public.t USING ..." (or "ON t" when public is on the
        # search path): the same index on the copy.
        on = re.compile(rf" ON (ONLY )?(public\.)?{re.escape(name)} USING ")
        if not on.search(definition):
            raise RuntimeError(f"cannot read the index definition {definition!r}")
        statements.append(sql.SQL(on.sub(lambda _: f" ON {_quoted(schema)}.{_quoted(name)} USING ",
                                          definition, count=1)))
    return statements


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _hypertable(conn: Connection[Any], schema: str, name: str) -> None:
    """Make the copy a hypertable when the public table is one (TimescaleDB path)."""
    if conn.execute("SELECT to_regclass('timescaledb_information.dimensions')").fetchone() \
            in (None, (None,)):
        return
    row = conn.execute(
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_schema = 'public' AND hypertable_name = %s AND dimension_number = 1",
        (name,)).fetchone()
    if row is not None:
        conn.execute("SELECT create_hypertable(%s::regclass, by_range(%s, %s::interval))",
                     (f"{_quoted(schema)}.{_quoted(name)}", row[0], row[1]))


def swap_in(conn: Connection[Any], schema: str, names: Sequence[str],
            position_names: Sequence[str], source: str) -> None:
    """In the caller's transaction, which holds ACCESS EXCLUSIVE locks on the
    public tables: replace each public table of ``names`` by its copy in
    ``schema`` (drop, then move: a catalog change, whatever the row count), and
    the public position rows of ``position_names`` for ``source`` by the copy's.
    Position rows for other sources stay: their runners resume where they were
    and what they apply again is deduplicated. Then drop ``schema``."""
    target = sql.Identifier(schema)
    for name in names:
        conn.execute(sql.SQL("DROP TABLE public.{}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(
            target, sql.Identifier(name)))
    conn.execute("DELETE FROM public.projection_positions WHERE projection = ANY(%s)"
                 " AND source = %s", (list(position_names), source))
    conn.execute(sql.SQL(
        "INSERT INTO public.projection_positions (projection, source, position)"
        " SELECT projection, source, position FROM {}.projection_positions"
        " WHERE projection = ANY(%s) AND source = %s").format(target),
        (list(position_names), source))
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(target))
