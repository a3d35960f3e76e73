"""cdr: one row per call, final once the call has ended.

The row is the whole folded CallView, so it also serves as the state the live
projection advances; `last_version` makes every write idempotent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from psycopg import Cursor, sql
from psycopg.rows import TupleRow, dict_row
from psycopg.types.json import Jsonb

from projections.call_view import CallView
from projections.staging import copy_merge

NAME = "cdr"
COLUMNS = CallView.columns()
_KEY = ("call_id", "started_at")


_ON_CONFLICT = sql.SQL(
    "ON CONFLICT (call_id, started_at) DO UPDATE SET {}"
    " WHERE t.last_version < EXCLUDED.last_version"
).format(sql.SQL(", ").join(
    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COLUMNS if c not in _KEY
))
_SELECT = sql.SQL("SELECT {cols} FROM cdr WHERE call_id = ANY(%s)").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)


def db_row(view: CallView) -> tuple[object, ...]:
    row = list(view.as_row())
    row[COLUMNS.index("transfers")] = Jsonb(view.transfers)
    return tuple(row)


def load(cur: Cursor[TupleRow], call_ids: Collection[object]) -> dict[object, CallView]:
    with cur.connection.cursor(row_factory=dict_row) as dict_cur:
        dict_cur.execute(_SELECT, (list(call_ids),))
        return {row["call_id"]: CallView(**row) for row in dict_cur.fetchall()}


def upsert(cur: Cursor[TupleRow], views: Iterable[CallView]) -> None:
    """Write the views; a row never moves back to an older version."""
    copy_merge(cur, NAME, COLUMNS, (db_row(v) for v in views), _ON_CONFLICT)
