"""queue_live: each queue's settings and tally (queue_live), its members
(queue_members) and the calls in it now, in service order (queue_calls).

A queue's members and calls are rewritten whole when it changes: they are
small (the calls waiting now), and rewriting keeps positions exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Stored:
    """A queue's members and calls as loaded, to write only what a batch changed."""

    members: dict[UUID, QueueMember]
    calls: list[QueuedCall]

    @classmethod
    def of(cls, view: QueueView) -> Stored:
        return cls(dict(view.members), list(view.calls))  # the view changes its own


def save(cur: Cursor[TupleRow], views: Iterable[QueueView],
         stored: Mapping[UUID, Stored] | None = None) -> None:
    """Write the views; with ``stored`` (what ``load`` gave, before the fold), only the
    member rows that changed (an offer changes one member's last_offered) and the calls
    of queues whose calls changed: rewriting every member of every touched queue per
    batch was the largest write of a live runner's batch (1,500 rows for 50 queues)."""
    views = list(views)
    if not views:
        return
    stored = stored or {}
    cur.executemany(_UPSERT, [_row(v) for v in views])
    gone: list[tuple[UUID, UUID]] = []
    members: list[tuple[object, ...]] = []
    recall: list[QueueView] = []
    for v in views:
        before = stored.get(v.queue_id, Stored({}, []))
        gone += [(v.queue_id, a) for a in before.members.keys() - v.members.keys()]
        members += [(v.queue_id, a, m.penalty, m.last_offered, v.tenant)
                    for a, m in v.members.items() if before.members.get(a) != m]
        if v.calls != before.calls or v.queue_id not in stored:
            recall.append(v)
    if gone:
        cur.execute("DELETE FROM queue_members m USING unnest(%s::uuid[], %s::uuid[])"
                    " AS g(queue_id, agent_id)"
                    " WHERE m.queue_id = g.queue_id AND m.agent_id = g.agent_id",
                    [list(column) for column in zip(*gone, strict=True)])
    if members:
        cur.executemany(_MEMBER, members)
    if recall:
        cur.execute("DELETE FROM queue_calls WHERE queue_id = ANY(%s)",
                    ([v.queue_id for v in recall],))
        cur.executemany(
            "INSERT INTO queue_calls (queue_id, call_id, position, priority, enqueued_at, "
            "transferred_from, ringing_agents, tenant) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(v.queue_id, c.call_id, n, c.priority, c.enqueued_at, c.transferred_from,
              list(c.offered_to), v.tenant) for v in recall
             for n, c in enumerate(v.calls, start=1)])


_MEMBER = """
INSERT INTO queue_members (queue_id, agent_id, penalty, last_offered, tenant)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (queue_id, agent_id) DO UPDATE
SET penalty = EXCLUDED.penalty, last_offered = EXCLUDED.last_offered, tenant = EXCLUDED.tenant
"""


def _row(view: QueueView) -> tuple[object, ...]:
    return tuple(Jsonb(value) if name == "required_skills" else value
                 for name, value in zip(COLUMNS, view.as_row(), strict=True))
