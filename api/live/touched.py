"""Re-reading a live view in part: only the queues, agents and calls a change touched.

The live feed (api/live/stream.py) learns with each projection commit which ids
it touched (projections/touched.py). `read_touched` takes the view's previous
`LiveParts` and, in the caller's transaction (one database snapshot), re-reads:

* the queues of those ids, and the queues their agents are members of (a queue's
  `now` counts its members by state), the queue of a touched call's visit or
  handling, the queue an agent is on a call for, and every queue with a call
  waiting (its waits grow with the clock): each with the same SQL as a whole
  read (api/live/snapshot.py), filtered to those queues, sums included;
* the agents of those ids, and the agent handling a touched call;
* the calls of those ids (a call gone from call_live leaves the view).

Everything else is kept from the previous parts, but `as_of` and the tenant
summary (made again from every queue's sums, as a whole read makes it). What
moves with the clock in the parts kept (the rolling window of a queue without a
waiting call, which a call leaves after 15 minutes; the agents' occupancy, sent
to 0.1 %) is as of their own last read: the feed reads the whole view again
every `tick_s` (api/live/stream.py), which bounds how far behind they are.
A new day or a new time zone of the tenant makes it return None: read it all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from api.auth.dependencies import Principal
from api.auth.permissions import P
from api.live import snapshot as whole
from api.live.snapshot import (
    LiveParts,
    agent_lines,
    agents_only,
    by_queue,
    live_parts,
    queue_lines,
    sees_queues,
    tenant_summary,
    zone_and_positions,
)
from api.live.views import KEYED, PartialReads, stream_form
from api.schemas.live import CallLive, LiveSnapshot, QueueLive
from projections import callcentre, kpi
from projections import calls as calls_group
from projections.kpi import QueueSums, Window

T = TypeVar("T")


def _only(sql: str, anchor: str, column: str, param: str, count: int = 1) -> str:
    """`sql` with `column = ANY(param)` added after each `anchor`; the count is checked,
    so that a change to the whole read's SQL fails here rather than reading too much
    or too little."""
    if sql.count(anchor) != count:
        raise RuntimeError(f"expected {count} of {anchor!r} in the live view's SQL")
    return sql.replace(anchor, f"{anchor} AND {column} = ANY({param}::uuid[])")


_QUEUES = _only(whole._QUEUES, "WHERE tenant = $1", "queue_id", "$2")
_QUEUE_CALLS = _only(whole._QUEUE_CALLS, "WHERE tenant = $1", "queue_id", "$3")
_MEMBERS = _only(whole._MEMBERS, "WHERE m.tenant = $1", "m.queue_id", "$2")
_QUEUE_SUMS = _only(kpi.QUEUE_SUMS, "WHERE tenant = $1", "queue_id", "$4", count=2)
_TENANT = "WHERE tenant = $1"
_AGENTS = _only(
    whole._AGENTS.replace(kpi.AGENT_SUMS, _only(kpi.AGENT_SUMS, _TENANT, "agent_id", "$5"))
    .replace(kpi.AGENT_HANDLED, _only(kpi.AGENT_HANDLED, _TENANT, "agent_id", "$5"))
    .replace(kpi.AGENT_MISSED, _only(kpi.AGENT_MISSED, _TENANT, "aggregate_id", "$5")),
    "WHERE a.tenant = $1", "a.agent_id", "$5")
_CALLS = _only(whole._CALLS, "WHERE tenant = $1", "call_id", "$3")

# The ids a change touched, widened to what their rows feed: $2 the ids, $3 the
# earliest start of the view's windows (visits and handlings that ended before
# it count in no figure of the view).
_WIDEN = """
SELECT
  ARRAY(SELECT queue_id FROM queue_members WHERE tenant = $1 AND agent_id = ANY($2::uuid[])
        UNION SELECT queue_id FROM queue_calls WHERE tenant = $1 AND call_id = ANY($2::uuid[])
        UNION SELECT queue_id FROM queue_visits
              WHERE tenant = $1 AND call_id = ANY($2::uuid[]) AND (left_at IS NULL OR left_at >= $3)
        UNION SELECT queue_id FROM queue_handling
              WHERE tenant = $1 AND queue_id IS NOT NULL
                AND (call_id = ANY($2::uuid[]) OR agent_id = ANY($2::uuid[]))
                AND (wrap_up_ended_at IS NULL OR wrap_up_ended_at >= $3)
        UNION SELECT current_queue_id FROM agent_state
              WHERE tenant = $1 AND agent_id = ANY($2::uuid[]) AND current_queue_id IS NOT NULL
  ) AS queues,
  ARRAY(SELECT agent_id FROM queue_handling WHERE tenant = $1 AND call_id = ANY($2::uuid[])
        UNION SELECT agent_id FROM agent_state
              WHERE tenant = $1 AND current_call_id = ANY($2::uuid[])
  ) AS agents
"""


async def read_touched(conn: asyncpg.Connection, principal: Principal, now: datetime,
                       previous: LiveParts, ids: Collection[UUID]) -> LiveParts | None:
    """`previous` with what `ids` touched read again at `now` (see the module's
    docstring); None when it cannot be (a new day, a new zone): read it all."""
    old = previous.snapshot
    tenant = principal.tenant
    zone, position = await zone_and_positions(conn, tenant)
    windows = (kpi.today(now, zone), kpi.rolling(now, old.window_s))
    if zone != old.time_zone or windows[0].since != previous.windows[0].since:
        return None
    row = await conn.fetchrow(_WIDEN, tenant, list(ids), min(w.since for w in windows))
    # The queues with a call waiting too: their oldest wait, and the longest wait of
    # their windows, grow with the clock.
    queue_ids = {*ids, *row["queues"], *previous.oldest}
    agent_ids = {*ids, *row["agents"]}
    queues, sums, oldest = old.queues, previous.sums, previous.oldest
    if sees_queues(principal) and queue_ids:
        queues, sums, oldest = await _queues(conn, tenant, now, windows, previous, queue_ids)
    agents = old.agents
    sees, only = agents_only(principal)
    if sees and ids:
        rows = await conn.fetch(_AGENTS, tenant, windows[0].since, windows[0].until, only,
                                list(agent_ids))
        agents = _merged(agents, agent_lines(principal, rows, now), agent_ids,
                         lambda a: a.agent_id, lambda a: a.key)
    calls = old.calls
    if calls is not None and principal.can(P.CALLS_READ) and ids:
        fresh = [CallLive(**dict(r)) for r in await conn.fetch(_CALLS, tenant, now, list(ids))]
        calls = _merged(calls, fresh, set(ids), lambda c: c.call_id,
                        lambda c: (c.started_at, c.call_id))
    summary = (tenant_summary(queues, agents, calls, windows, list(sums))
               if principal.can(P.REPORTS_READ) else None)
    snapshot = LiveSnapshot(tenant=tenant, as_of=now, time_zone=zone, window_s=old.window_s,
                            position=position, queues=queues, agents=agents, calls=calls,
                            summary=summary)
    changed = (frozenset(queue_ids), frozenset(agent_ids), frozenset(ids))
    return LiveParts(snapshot, windows, sums, oldest, changed)


def restate(state: dict[str, Any], parts: LiveParts) -> dict[str, Any]:
    """`stream_form` of `parts.snapshot`, made from `state` (the stream form of the
    parts before) by putting in what `parts.changed` names: the same dict, without
    dumping the hundreds of agents no change touched (api/live/stream.py)."""
    if parts.changed is None:
        form: dict[str, Any] = stream_form(parts.snapshot.model_dump(mode="json"))
        return form
    snapshot = parts.snapshot
    shaped: dict[str, Any] = stream_form(snapshot.model_dump(mode="json", exclude=set(KEYED)))
    for (name, ident), changed in zip(KEYED.items(), parts.changed, strict=True):
        items = getattr(snapshot, name)
        kept = state.get(name)
        if items is None or not isinstance(kept, dict):
            shaped[name] = stream_form({name: _dumped(items)})[name]
            continue
        fresh = {str(k) for k in changed}
        entries = {k: v for k, v in kept.items() if k not in fresh}
        entries.update(stream_form({name: [item.model_dump(mode="json") for item in items
                                           if getattr(item, ident) in changed]})[name])
        shaped[name] = entries
    return shaped


def _dumped(items: list[BaseModel] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [item.model_dump(mode="json") for item in items]


Sums = tuple[dict[UUID, QueueSums], dict[UUID, QueueSums]]


async def _queues(conn: asyncpg.Connection, tenant: str, now: datetime,
                  windows: tuple[Window, Window], previous: LiveParts, queue_ids: set[UUID]
                  ) -> tuple[list[QueueLive], Sums, dict[UUID, datetime]]:
    """The view's queues with `queue_ids` read again, and their sums and oldest calls."""
    wanted = list(queue_ids)
    sums: Sums = ({}, {})
    for kept, window, merged in zip(previous.sums, windows, sums, strict=True):
        merged.update((k, v) for k, v in kept.items() if k not in queue_ids)
        for r in await conn.fetch(_QUEUE_SUMS, tenant, window.since, window.until, wanted):
            merged[r["queue_id"]] = QueueSums.of_row(r)
    rows = await conn.fetch(_QUEUES, tenant, wanted)
    calls = {r["queue_id"]: r for r in await conn.fetch(_QUEUE_CALLS, tenant, now, wanted)}
    members = by_queue(await conn.fetch(_MEMBERS, tenant, wanted))
    lines, fresh_oldest = queue_lines(rows, calls, members, windows, sums)
    oldest = {**{k: v for k, v in previous.oldest.items() if k not in queue_ids},
              **fresh_oldest}
    queues = _merged(previous.snapshot.queues, lines, queue_ids, lambda q: q.queue_id,
                     lambda q: q.key)
    return queues, sums, oldest


def _merged(kept: list[T], fresh: list[T], read: Collection[Hashable],
            ident: Callable[[T], Hashable], order: Callable[[T], object]) -> list[T]:
    """`kept` with every item whose id was `read` replaced by its `fresh` one (or
    gone, when the read found none), in the whole read's order."""
    merged = {ident(item): item for item in kept if ident(item) not in read}
    merged.update((ident(item), item) for item in fresh)
    return sorted(merged.values(), key=order)  # type: ignore[arg-type]


# What the live view reads is written by these two groups (their position rows
# move with their tables): the feed of `GET /v1/live/stream`.
PARTS = PartialReads(whole=live_parts, touched=read_touched,
                     inputs=frozenset({*callcentre.NAMES, *calls_group.NAMES}), restate=restate)
