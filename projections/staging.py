"""Bulk upserts: COPY a batch into a session staging table, then merge it with
one INSERT ... SELECT. One round trip per batch instead of one per row."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from psycopg import Cursor, sql
from psycopg.rows import TupleRow


def copy_merge(
    cur: Cursor[TupleRow],
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    on_conflict: sql.Composable,
) -> None:
    """Insert `rows` into `table` inside the caller's transaction, resolving
    conflicts with `on_conflict` (e.g. ``ON CONFLICT DO NOTHING``)."""
    stage = sql.Identifier(f"{table}_stage")
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    cur.execute(sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS)"
        " ON COMMIT DELETE ROWS"
    ).format(stage=stage, table=sql.Identifier(table)))
    with cur.copy(sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=stage,
                                                                      cols=cols)) as copy:
        for row in rows:
            copy.write_row(row)
    cur.execute(sql.SQL("INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage} ").format(
        table=sql.Identifier(table), cols=cols, stage=stage) + on_conflict)
    # Emptied now, not only at commit: a caller inside an outer transaction (a rebuild's
    # locked step applies page after page in one) would merge the earlier pages again.
    cur.execute(sql.SQL("DELETE FROM {stage}").format(stage=stage))


def select_by_ids(table: str, key: str, columns: Sequence[str]) -> sql.Composed:
    """``SELECT columns FROM table WHERE key = ANY(%s)``: a batch's current rows."""
    return sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table),
        sql.Identifier(key))


def versioned_upsert(table: str, key: str, columns: Sequence[str]) -> sql.Composed:
    """One row per aggregate (`key`), replaced only by a newer `last_version`."""
    return sql.SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) "
        "ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = now() "
        "WHERE {table}.last_version < EXCLUDED.last_version"
    ).format(
        table=sql.Identifier(table),
        key=sql.Identifier(key),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns
            if c != key),
    )


# From this many rows a writer stages them (COPY, then one statement); below it, a live
# runner's batch of a few events, it sends a statement per row in a pipeline: fewer
# round trips than creating, filling and emptying stages. Both write the same rows
# (tests/integration/test_callcentre_pages.py). Also the size from which stage()
# analyzes its table.
SET_WISE_FROM = 200
ANALYZE_FROM = SET_WISE_FROM


def stage(cur: Cursor[TupleRow], name: str, columns: Sequence[tuple[str, str]],
          rows: Iterable[Sequence[object]], *, analyze: bool = True) -> sql.Identifier:
    """COPY ``rows`` into the session's temporary table ``name`` (``columns``: name and
    SQL type each; created on first use) and return its name, for one set-wise
    statement per table instead of one per row. The caller empties it (``unstage``)
    once read: a batch applied inside an outer transaction (a rebuild's locked step)
    is not followed by a commit that would. ``analyze``: for a stage joined with
    another table (see below)."""
    stage_name = sql.Identifier(name)
    cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        stage_name, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                                       for c, t in columns)))
    count = _copy_binary(cur, stage_name, columns, rows)
    if analyze and count >= ANALYZE_FROM:
        # Nothing analyzes a temporary table: without this the planner takes a page of
        # thousands for a few rows and joins it by nested loop (a second for 1,200
        # closes against 1,500 visits).
        cur.execute(sql.SQL("ANALYZE {}").format(stage_name))
    return stage_name


def copy_into(cur: Cursor[TupleRow], table: str, columns: Sequence[tuple[str, str]],
              rows: Iterable[Sequence[object]]) -> None:
    """COPY ``rows`` straight into ``table`` (binary, as ``stage``): for rows that cannot
    be there yet (a first pass from the store), where no conflict needs resolving; a
    row that is there fails the copy on its key."""
    _copy_binary(cur, sql.Identifier(table), columns, rows)


def _copy_binary(cur: Cursor[TupleRow], table: sql.Identifier,
                 columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]]) -> int:
    """COPY ``rows`` into ``table``; return how many. Binary, with the column types given:
    psycopg's C dumpers write each value as is, where the text format formats and
    escapes it (a third less of the reader's CPU for a page of events, which a
    rebuild's first pass spends on every event)."""
    count = 0
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            table, sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))) as copy:
        copy.set_types([sql_type for _, sql_type in columns])
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def unstage(cur: Cursor[TupleRow], name: str) -> None:
    cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(name)))


# What keyed_lookups turns off: any plan but a nested loop probing the target by key.
_KEYED = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")


@contextmanager
def keyed_lookups(cur: Cursor[TupleRow]) -> Iterator[None]:
    """Within the caller's transaction, plan the statements run inside as index
    lookups: for set-wise updates whose staged rows each name one target row by its
    key. During a bulk load the target's statistics lag (autovacuum analyzes it a
    while later), so the planner took a growing table for a few hundred rows and
    hash-joined the stage to a scan of all of it: at a million events into a month's
    build, closing a page's queue visits went from 20 to 120 ms a round (bench.reports)
    and kept growing with the table. With scans off it still hash-joined the agents'
    period closes to the partial index of open periods, whose entries for every
    period closed since (dead rows) it walked each time: 9 ms a page by the month's
    end, against 2 ms probing each period by its key (pg_stat_statements)."""
    previous = cur.execute(
        "SELECT " + ", ".join(f"current_setting('{name}'), set_config('{name}', 'off', true)"
                              for name in _KEYED)).fetchone()
    try:
        yield
    finally:
        values = ["on"] * len(_KEYED) if previous is None else list(previous[::2])
        cur.execute("SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in _KEYED),
                    values)
