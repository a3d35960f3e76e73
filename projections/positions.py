"""projection_positions: how far each projection has applied each source."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import Connection, Cursor
from psycopg.rows import TupleRow

_RECORD = """
INSERT INTO projection_positions (projection, source, position) VALUES (%s, %s, %s)
ON CONFLICT (projection, source) DO UPDATE
SET position = GREATEST(projection_positions.position, EXCLUDED.position), updated_at = now()
"""


def record(cur: Cursor[TupleRow], projections: Iterable[str], source: str, position: int) -> None:
    cur.executemany(_RECORD, [(name, source, position) for name in projections])


def read(conn: Connection[TupleRow], projection: str, source: str) -> int:
    row = conn.execute(
        "SELECT position FROM projection_positions WHERE projection = %s AND source = %s",
        (projection, source),
    ).fetchone()
    return int(row[0]) if row else 0
