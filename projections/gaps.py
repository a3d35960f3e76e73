"""call_projection_gaps: calls with events waiting behind a missing earlier one."""

from __future__ import annotations

from collections.abc import Collection

from psycopg import Cursor
from psycopg.rows import TupleRow


def load(cur: Cursor[TupleRow], call_ids: Collection[object]) -> set[object]:
    cur.execute("SELECT call_id FROM call_projection_gaps WHERE call_id = ANY(%s)",
                (list(call_ids),))
    return {row[0] for row in cur.fetchall()}


def replace(cur: Cursor[TupleRow], *, known: Collection[object],
            gapped: Collection[object]) -> None:
    """Record the calls still gapped; forget the known ones whose gap closed."""
    closed = [call_id for call_id in known if call_id not in set(gapped)]
    if closed:
        cur.execute("DELETE FROM call_projection_gaps WHERE call_id = ANY(%s)", (closed,))
    if gapped:
        cur.executemany("INSERT INTO call_projection_gaps (call_id) VALUES (%s) "
                        "ON CONFLICT DO NOTHING", [(c,) for c in gapped])
