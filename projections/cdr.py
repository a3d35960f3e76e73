"""cdr: one row per call, final once the call has ended.

The row is the whole folded CallView, so it also serves as the state the live
projection advances; `last_version` makes every write idempotent.

`wrap_up_s` is the exception: the agents' after-call work follows the call's
end and is a fact of the call-centre log (queue_handling, written by the
call-centre group from the Agent events), not of the call's. This group never
overwrites it; `fill_wrap_up` copies it from queue_handling, run by both groups
(here for the calls this batch wrote, there when a wrap-up ends), so whichever
commits second finds the other's row. A call several agents handled (a
transfer) has the sum of their wrap-ups.
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
_OTHER_WRITER = ("wrap_up_s",)  # see the module docstring


_ON_CONFLICT = sql.SQL(
    "ON CONFLICT (call_id, started_at) DO UPDATE SET {}"
    " WHERE t.last_version < EXCLUDED.last_version"
).format(sql.SQL(", ").join(
    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COLUMNS
    if c not in _KEY + _OTHER_WRITER
))
_SELECT = sql.SQL("SELECT {cols} FROM cdr WHERE call_id = ANY(%s)").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)


_FILL_WRAP_UP = """
UPDATE cdr SET wrap_up_s = h.wrap_up_s
FROM (SELECT call_id, sum(wrap_up_s) AS wrap_up_s FROM queue_handling
      WHERE call_id = ANY(%s) AND wrap_up_s IS NOT NULL GROUP BY call_id) h
WHERE cdr.call_id = h.call_id AND cdr.wrap_up_s IS DISTINCT FROM h.wrap_up_s
"""
_FILL_ALL_WRAP_UPS = _FILL_WRAP_UP.replace("call_id = ANY(%s) AND ", "")


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
    views_ = list(views)
    copy_merge(cur, NAME, COLUMNS, (db_row(v) for v in views_), _ON_CONFLICT)
    fill_wrap_up(cur, [v.call_id for v in views_ if v.is_final])


def fill_wrap_up(cur: Cursor[TupleRow], call_ids: Collection[object] | None) -> None:
    """Copy the calls' wrap-up from queue_handling (every call's if None)."""
    if call_ids is None:
        cur.execute(_FILL_ALL_WRAP_UPS)
    elif call_ids:
        cur.execute(_FILL_WRAP_UP, (list(call_ids),))
