"""queue_live: each queue's settings and tally (queue_live), its members
(queue_members) and the calls in it now, in service order (queue_calls).

A queue's members and calls are rewritten whole when it changes: they are
small (the calls waiting now), and rewriting keeps positions exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from domain.queue_values import QueuedCall, QueueMember
from projections.queue_view import COLUMNS, QueueView
from projections.staging import select_by_ids, versioned_upsert

NAME = "queue_live"

_SELECT = select_by_ids(NAME, "queue_id", COLUMNS)
_UPSERT = versioned_upsert(NAME, "queue_id", COLUMNS)
_MEMBERS = "SELECT queue_id, agent_id, penalty, last_offered FROM queue_members " \
           "WHERE queue_id = ANY(%s)"
_CALLS = "SELECT queue_id, call_id, priority, enqueued_at, transferred_from, ringing_agents " \
         "FROM queue_calls WHERE queue_id = ANY(%s) ORDER BY queue_id, position"


def load(cur: Cursor[TupleRow], queue_ids: Collection[UUID]) -> dict[UUID, QueueView]:
    ids = list(queue_ids)
    members: dict[UUID, dict[UUID, QueueMember]] = defaultdict(dict)
    cur.execute(_MEMBERS, (ids,))
    for queue_id, agent_id, penalty, last_offered in cur.fetchall():
        members[queue_id][agent_id] = QueueMember(penalty, last_offered)
    calls: dict[UUID, list[QueuedCall]] = defaultdict(list)
    cur.execute(_CALLS, (ids,))
    for queue_id, call_id, priority, enqueued_at, source, ringing in cur.fetchall():
        calls[queue_id].append(QueuedCall(call_id, priority, enqueued_at, source, tuple(ringing)))
    cur.execute(_SELECT, (ids,))
    views = {}
    for row in cur.fetchall():
        named = dict(zip(COLUMNS, row, strict=True))
        queue_id = named["queue_id"]
        views[queue_id] = QueueView.from_row(named, members[queue_id], calls[queue_id])
    return views


def save(cur: Cursor[TupleRow], views: Iterable[QueueView]) -> None:
    views = list(views)
    if not views:
        return
    cur.executemany(_UPSERT, [_row(v) for v in views])
    ids = [v.queue_id for v in views]
    cur.execute("DELETE FROM queue_members WHERE queue_id = ANY(%s)", (ids,))
    cur.execute("DELETE FROM queue_calls WHERE queue_id = ANY(%s)", (ids,))
    cur.executemany(
        "INSERT INTO queue_members (queue_id, agent_id, penalty, last_offered, tenant) "
        "VALUES (%s, %s, %s, %s, %s)",
        [(v.queue_id, a, m.penalty, m.last_offered, v.tenant)
         for v in views for a, m in v.members.items()])
    cur.executemany(
        "INSERT INTO queue_calls (queue_id, call_id, position, priority, enqueued_at, "
        "transferred_from, ringing_agents, tenant) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [(v.queue_id, c.call_id, n, c.priority, c.enqueued_at, c.transferred_from,
          list(c.offered_to), v.tenant) for v in views for n, c in enumerate(v.calls, start=1)])


def _row(view: QueueView) -> tuple[object, ...]:
    return tuple(Jsonb(value) if name == "required_skills" else value
                 for name, value in zip(COLUMNS, view.as_row(), strict=True))
