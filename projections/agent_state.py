"""agent_state: one row per agent, its current state and since when."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from psycopg import Cursor, sql
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from projections.agent_view import AgentView

NAME = "agent_state"
COLUMNS = AgentView.columns()

_SELECT = sql.SQL("SELECT {} FROM agent_state WHERE agent_id = ANY(%s)").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))

_UPSERT = sql.SQL(
    "INSERT INTO agent_state ({columns}) VALUES ({values}) "
    "ON CONFLICT (agent_id) DO UPDATE SET {updates}, updated_at = now() "
    "WHERE agent_state.last_version < EXCLUDED.last_version"
).format(
    columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
    values=sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
    updates=sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in COLUMNS[1:]),
)


def load(cur: Cursor[TupleRow], agent_ids: Collection[object]) -> dict[object, AgentView]:
    cur.execute(_SELECT, (list(agent_ids),))
    views = [AgentView(*row) for row in cur.fetchall()]
    return {view.agent_id: view for view in views}


def upsert(cur: Cursor[TupleRow], views: Iterable[AgentView]) -> None:
    rows = [_row(view) for view in views]
    if rows:
        cur.executemany(_UPSERT, rows)


def _row(view: AgentView) -> tuple[object, ...]:
    return tuple(Jsonb(value) if name == "skills" else value
                 for name, value in zip(COLUMNS, view.as_row(), strict=True))
