"""Bulk upserts: COPY a batch into a session staging table, then merge it with
one INSERT ... SELECT. One round trip per batch instead of one per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
