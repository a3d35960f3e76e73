"""call_live: calls in progress and their current state; a row leaves when the call ends.

`agents` lists the agents connected to the call so far (AgentConnected, in order;
a transfer to another agent adds them): an agent user reads only calls naming them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from psycopg import Cursor
from psycopg.rows import TupleRow

if TYPE_CHECKING:  # projections.calls imports this module to write the table
    from projections.calls import CallView

NAME = "call_live"

_UPSERT = """
INSERT INTO call_live (call_id, status, direction, caller, callee, target, trunk, queue,
                       started_at, answered_at, on_hold_since, last_version, last_position,
                       tenant, agents)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (call_id) DO UPDATE SET
    status = EXCLUDED.status, target = EXCLUDED.target, queue = EXCLUDED.queue,
    answered_at = EXCLUDED.answered_at, on_hold_since = EXCLUDED.on_hold_since,
    agents = EXCLUDED.agents,
    last_version = EXCLUDED.last_version, last_position = EXCLUDED.last_position,
    updated_at = now()
WHERE call_live.last_version < EXCLUDED.last_version
"""

_DELETE = "DELETE FROM call_live WHERE call_id = %s"


def sync(cur: Cursor[TupleRow], views: Iterable[CallView]) -> None:
    live: list[CallView] = []
    ended: list[CallView] = []
    for view in views:
        (ended if view.is_final else live).append(view)
    if live:
        cur.executemany(_UPSERT, [_row(v) for v in live])
    if ended:
        cur.executemany(_DELETE, [(v.call_id,) for v in ended])


def _row(v: CallView) -> tuple[object, ...]:
    return (v.call_id, v.status, v.direction, v.caller, v.callee, v.final_callee, v.trunk,
            v.queue, v.started_at, v.answered_at, v.hold_started_at, v.last_version,
            v.last_position, v.tenant, list(v.agents))
