"""agent_state: one row per agent, its current state and since when."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from psycopg import Cursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from projections.agent_view import AgentView
from projections.staging import select_by_ids, versioned_upsert

NAME = "agent_state"
COLUMNS = AgentView.columns()

_SELECT = select_by_ids(NAME, "agent_id", COLUMNS)
_UPSERT = versioned_upsert(NAME, "agent_id", COLUMNS)


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
