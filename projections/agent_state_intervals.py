"""agent_state_intervals: one row per agent per state period, for historical reports.

A period starts with the event that puts the agent in a state and ends when
the next such event happens (``ended_at``, ``duration_s``); the open period
has no end. Rows are keyed by the starting event's version, and each version
is folded exactly once (agent_state's version gate), so re-delivered events
add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import TupleRow

from projections import staging
from projections.agent_view import AgentView

NAME = "agent_state_intervals"

# Staged (COPY), then one statement each: the stored periods a batch ends (one per
# agent at most) and the new ones (each started once: the version gate).
_COLUMNS = (("agent_id", "uuid"), ("started_version", "integer"),
            ("started_at", "timestamptz"), ("state", "text"), ("reason", "text"),
            ("call_id", "uuid"), ("queue_id", "uuid"), ("ended_at", "timestamptz"),
            ("duration_s", "double precision"), ("tenant", "text"))
_NEW = "agent_periods_new"
_INSERT_NEW = f"""
INSERT INTO agent_state_intervals ({", ".join(c for c, _ in _COLUMNS)})
SELECT * FROM {_NEW} ON CONFLICT DO NOTHING
"""  # noqa: S608 - constants
_CLOSING = "agent_periods_closing"
_CLOSING_COLUMNS = (("ended_at", "timestamptz"), ("agent_id", "uuid"),
                    ("started_version", "integer"), ("started_at", "timestamptz"))
_CLOSE = """
UPDATE agent_state_intervals a
SET ended_at = s.ended_at, duration_s = GREATEST(0, extract(epoch FROM s.ended_at - a.started_at))
FROM agent_periods_closing s
WHERE a.agent_id = s.agent_id AND a.started_version = s.started_version
  AND a.started_at = s.started_at AND a.ended_at IS NULL
"""


@dataclass
class StatePeriod:
    agent_id: UUID
    started_version: int
    started_at: datetime
    state: str
    reason: str | None
    call_id: UUID | None
    queue_id: UUID | None
    tenant: str
    ended_at: datetime | None = None

    @classmethod
    def of(cls, view: AgentView) -> StatePeriod:
        return cls(view.agent_id, view.state_version, view.state_since, view.state,
                   view.pause_reason, view.current_call_id, view.current_queue_id, view.tenant)

    def row(self) -> tuple[object, ...]:
        duration = (None if self.ended_at is None
                    else max(0.0, (self.ended_at - self.started_at).total_seconds()))
        return (self.agent_id, self.started_version, self.started_at, self.state, self.reason,
                self.call_id, self.queue_id, self.ended_at, duration, self.tenant)


class PeriodLog:
    """The periods one batch starts and the stored ones it ends."""

    def __init__(self) -> None:
        self._new: list[StatePeriod] = []
        self._open_new: dict[UUID, StatePeriod] = {}
        self._closed_stored: list[tuple[datetime, UUID, int, datetime]] = []

    def started(self, view: AgentView, previous: tuple[int, datetime] | None) -> None:
        """The agent entered the period ``view`` is in; ``previous`` is the
        (state_version, state_since) of the period it left, if it had one."""
        open_new = self._open_new.get(view.agent_id)
        if open_new is not None:
            open_new.ended_at = view.state_since
        elif previous is not None:
            version, since = previous
            self._closed_stored.append((view.state_since, view.agent_id, version, since))
        period = StatePeriod.of(view)
        self._new.append(period)
        self._open_new[view.agent_id] = period

    def write(self, cur: Cursor[TupleRow], *, fresh: bool = False) -> None:
        """``fresh``: a first pass from the store (callcentre.apply_batch), where no
        period was written before: the new ones are copied straight into the table."""
        if len(self._closed_stored) + len(self._new) < staging.SET_WISE_FROM:
            self._write_rows(cur)
            return
        if self._closed_stored:
            staging.stage(cur, _CLOSING, _CLOSING_COLUMNS, self._closed_stored)
            with staging.keyed_lookups(cur):
                cur.execute(_CLOSE)
            staging.unstage(cur, _CLOSING)
        if self._new and fresh:
            staging.copy_into(cur, NAME, _COLUMNS, (p.row() for p in self._new))
        elif self._new:
            staging.stage(cur, _NEW, _COLUMNS, (p.row() for p in self._new), analyze=False)
            cur.execute(_INSERT_NEW)
            staging.unstage(cur, _NEW)

    def _write_rows(self, cur: Cursor[TupleRow]) -> None:
        """A live batch's few periods: a statement each (executemany pipelines them)."""
        if self._closed_stored:
            cur.executemany(_CLOSE_ROW, [(end, end, agent_id, version, since)
                                         for end, agent_id, version, since in self._closed_stored])
        if self._new:
            cur.executemany(_INSERT_ROW, [p.row() for p in self._new])


_INSERT_ROW = """
INSERT INTO agent_state_intervals (agent_id, started_version, started_at, state, reason,
                                   call_id, queue_id, ended_at, duration_s, tenant)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_CLOSE_ROW = """
UPDATE agent_state_intervals
SET ended_at = %s, duration_s = GREATEST(0, extract(epoch FROM %s - started_at))
WHERE agent_id = %s AND started_version = %s AND started_at = %s AND ended_at IS NULL
"""
