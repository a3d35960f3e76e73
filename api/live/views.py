"""The live feed's views (api/live/stream.py drives them): who shares a snapshot
(`ViewKey`), the snapshot's stream form and the JSON Merge Patch (RFC 7396) of a
change, one client's bounded queue (`Subscriber`), a view with its ring of
patches (`View`), and whether the touched-ids notifications a hub holds cover
what moved since a view's last read (`covered`)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.auth.dependencies import Principal
from projections.touched import Touched


@dataclass(frozen=True)
class ViewKey:
    """What a snapshot depends on besides the data: who may see what."""

    tenant: str
    role: str
    agent_key: str | None

    @classmethod
    def of(cls, principal: Principal) -> ViewKey:
        return cls(principal.tenant, principal.role.value, principal.agent_key)


def frame(event: str, position: int, data: Any) -> str:
    """One SSE event; JSON never holds a raw newline, so `data` is one line."""
    return f"event: {event}\nid: {position}\ndata: {json.dumps(data, default=str)}\n\n"


# The stream's form of a view (`stream_form`): what changes with the clock alone is
# left out (the page derives it from `as_of`), and collections are objects keyed by
# id, so that a merge patch carries the entries that changed, not every list whole.
KEYED = {"queues": "queue_id", "agents": "agent_id", "calls": "call_id"}
_CLOCK_ONLY = {"since", "until", "time_in_state_s", "duration_s"}
# Moves a little with the clock for every logged-in agent (its periods run to as_of):
# sent to 0.1 %, so it changes when it visibly does, not on every read.
_ROUNDED = {"occupancy_today": 3}


def stream_form(state: Any) -> Any:
    """`state` (a `GET /v1/live` body) as the stream carries it: `queues`, `agents`
    and `calls` keyed by their ids; windows without `since`/`until` (as_of and
    window_s give them); agents without `time_in_state_s` (as_of - state_since)
    and their occupancy to 0.1 %; calls without `duration_s` (as_of - started_at).
    Other views pass unchanged."""
    if not isinstance(state, dict):
        return state
    shaped = {}
    for key, value in state.items():
        if key in KEYED and isinstance(value, list):
            shaped[key] = {item[KEYED[key]]: _without_clock(item) for item in value}
        else:
            shaped[key] = _without_clock(value) if key == "summary" else value
    return shaped


def _without_clock(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: (round(v, _ROUNDED[k]) if k in _ROUNDED and isinstance(v, float)
                else _without_clock(v))
            for k, v in value.items() if k not in _CLOCK_ONLY}


def window_figures(state: Any) -> Any:
    """What of a view (in its stream form) moves with time alone and is worth a
    change: each queue's and the summary's window figures."""
    if not isinstance(state, dict):
        return None

    def figures(holder: Any) -> Any:
        if not isinstance(holder, dict):
            return None
        return {name: holder.get(name) for name in ("today", "window")}

    queues = state.get("queues")
    return {"queues": ({k: figures(q) for k, q in queues.items()}
                       if isinstance(queues, dict) else None),
            "summary": figures(state.get("summary"))}


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7396 merge patch that turns `old` into `new` (objects recurse;
    anything else, lists included, is replaced whole; a removed key is null)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


class Subscriber:
    """One connected client: a bounded queue of frames, closed when it overflows."""

    def __init__(self, view: View, buffer: int) -> None:
        self.view = view
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=buffer)
        self.dropped = False

    def offer(self, text: str) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close()  # too slow: drop it rather than grow; it reconnects and resumes

    def close(self) -> None:
        """End this client's stream: its frames are let go, its reader wakes at once."""
        self.dropped = True
        self.view.subscribers.discard(self)
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


Rows = dict[tuple[str, str], int]  # (projection, source) -> position: projection_positions


@dataclass(frozen=True)
class PartialReads:
    """How a hub reads a view in part (api/live/touched.py gives the live view's):
    `whole` reads it all and returns its parts (what `touched` needs next time;
    `.snapshot` is the view); `touched` re-reads what `ids` touched in `previous`
    (None: it cannot, read it whole); `inputs` are the projections whose position
    rows the view depends on (rows of others, webhooks' say, may move freely);
    `restate` makes the stream form of new parts from that of the previous ones
    (cheaper than `stream_form` of it all when little changed)."""

    whole: Callable[[asyncpg.Connection, Principal, datetime], Awaitable[Any]]
    touched: Callable[[asyncpg.Connection, Principal, datetime, Any, frozenset[UUID]],
                      Awaitable[Any | None]]
    inputs: frozenset[str]
    restate: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


@dataclass
class View:
    key: ViewKey
    principal: Principal
    position: int
    state: dict[str, Any]
    base: int  # the position of the state before the ring's oldest patch
    ring: deque[tuple[int, dict[str, Any]]]
    subscribers: set[Subscriber] = field(default_factory=set)
    idle_since: float | None = None
    rows: Rows = field(default_factory=dict)  # the position rows `state` was read at
    parts: Any = None  # PartialReads' parts of the last read (None without PartialReads)
    parts_state: dict[str, Any] = field(default_factory=dict)  # their stream form
    whole_at: float = 0.0  # when it was last read whole (the event loop's clock)

    def frames_after(self, last_id: int | None) -> list[str]:
        """What a client that has seen `last_id` needs to reach `position`."""
        if last_id == self.position:
            return []
        if last_id is not None and (last_id == self.base or
                                    any(p == last_id for p, _ in self.ring)):
            return [frame("change", p, patch) for p, patch in self.ring
                    if p > last_id and patch]
        return [frame("snapshot", self.position, self.state)]

    def advance(self, position: int, state: dict[str, Any]) -> dict[str, Any]:
        patch: dict[str, Any] = merge_patch(self.state, state)
        if len(self.ring) == self.ring.maxlen:
            self.base = self.ring[0][0]
        self.ring.append((position, patch))
        self.position, self.state = position, state
        return patch


@dataclass(frozen=True)
class Read:
    position: int
    rows: Rows
    state: dict[str, Any]
    parts: Any
    whole: bool  # read whole (not in part)


UNCOVERED = object()  # what `covered` says when a moved position is not covered


def covered(touched: Mapping[str, Sequence[Touched]],
            moved: Mapping[tuple[str, str], tuple[int, int]]) -> frozenset[UUID] | object | None:
    """The ids that the notifications `touched` (by source) name for the `moved`
    position rows ((projection, source) -> (from, to)); None if one of them names
    everything; UNCOVERED if a position of a moved row is in none of them."""
    ids: set[UUID] = set()
    everything = False
    for (_, source), (was, now) in moved.items():
        reach = was
        for notice in sorted((t for t in touched.get(source, ())
                              if t.upto > was and t.after < now), key=lambda t: t.after):
            if notice.after > reach:
                break  # a gap: a commit that named nothing (or is not here yet)
            reach = max(reach, notice.upto)
            if notice.ids is None:
                everything = True
            else:
                ids |= notice.ids
        if reach < now:
            return UNCOVERED
    return None if everything else frozenset(ids)
