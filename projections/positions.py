"""How far each projection has applied each source, and how a runner moves it on.

``projection_positions`` holds the position; a page commits in one transaction with
it, so a crash resumes after what is committed (``record``, ``read``).

``projection_dead_letters``: events a projection cannot apply are parked, not retried
forever. A batch that fails because of what one of its events holds (a "poison" event,
e.g. text with U+0000, which PostgreSQL's text and jsonb refuse) would fail the same
way on every retry and stop the projection for good. So a runner applies batches
through ``apply_or_park``: on such a failure it bisects the batch, applies the healthy
halves, and parks the event that fails on its own in ``projection_dead_letters``, in
the same transaction that moves the projection's position past it. Failures that are
not the event's fault (the database gone, a lock timeout, a missing privilege or
table) are raised for the runner to retry: parking would hide an outage as lost
events. ``count_parked`` is what health checks and metrics read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification
from psycopg import Connection, Cursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from projections.envelope import EventEnvelope, event_id
from projections.registry import ApplyBatch, ProjectionGroup

log = logging.getLogger(__name__)

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


TABLE = "projection_dead_letters"
_ERROR_CHARS = 2000  # enough to diagnose; bounded so one row stays small

_PARK = """
INSERT INTO projection_dead_letters
    (projection, source, position, event_id, aggregate_id, type, error, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (projection, source, position) DO NOTHING
"""


def is_poison(error: BaseException) -> bool:
    """Whether `error` comes from the event's content, so that a retry cannot help.

    PostgreSQL data exceptions (class 22, e.g. 22P05 for U+0000) and integrity
    violations (class 23) are about the values written; an exception from the
    projection's own Python code is about the event it was folding. Every other
    database error (connection lost, deadlock, lock or statement timeout,
    insufficient privilege, undefined table, ...) is about the database and is
    retried: parking events during an outage would lose them from the views.
    """
    if isinstance(error, psycopg.Error):
        return isinstance(error, psycopg.DataError | psycopg.IntegrityError)
    return isinstance(error, Exception) and not isinstance(error, OSError)


def apply_or_park(conn: Connection[Any], group: ProjectionGroup,
                  envelopes: Sequence[EventEnvelope], source: str) -> int:
    """Apply the batch like ``group.apply``; park whichever events make it fail. A
    batch with none of the group's kinds only moves the group's position on (what
    its apply would do), without entering it: a plain call's page never runs the
    call-centre group's fold.

    Each applied piece and each parked event commits with its position, so a
    crash in the middle resumes after what is committed. Returns what the
    group's apply returns, summed over the pieces.
    """
    if envelopes and not any(e.kind in group.kinds for e in envelopes):
        with conn.transaction(), conn.cursor() as cur:  # a savepoint in a runner's page
            record(cur, group.names, source, max(e.position for e in envelopes))
        return 0
    return parking(group, group.apply)(conn, envelopes, source)


def parking(group: ProjectionGroup, apply: ApplyBatch) -> ApplyBatch:
    """``apply`` (the group's, or a rebuild's ``apply_fresh``), but a batch that fails on
    an event's content is split in two, each half applied by ``apply_or_park``, down
    to the one event that is parked: the live runners and the rebuilds and replays
    park the same events, rather than stop on them."""
    def applying(conn: Connection[Any], envelopes: Sequence[EventEnvelope], source: str) -> int:
        try:
            return apply(conn, envelopes, source)
        except Exception as error:
            if not is_poison(error) or not envelopes:
                raise
            if len(envelopes) == 1:
                park(conn, group, envelopes[0], source, error)
                return 0
            middle = len(envelopes) // 2
            return (apply_or_park(conn, group, envelopes[:middle], source)
                    + apply_or_park(conn, group, envelopes[middle:], source))
    return applying


def park(conn: Connection[Any], group: ProjectionGroup, envelope: EventEnvelope, source: str,
         error: BaseException) -> None:
    """Record `envelope` as not applicable by `group`, and move the group past it."""
    projection = group.names[0]
    reason = _without_nul(f"{type(error).__name__}: {error}")[:_ERROR_CHARS]
    log.error("projection %s parked event %s (%s, aggregate %s, position %d from %s): %s",
              projection, envelope.id, envelope.type, envelope.subject, envelope.position,
              source, _summary(error),
              # as fields too, so that a log store can select the lines of one aggregate
              extra={"aggregate_id": str(envelope.subject), "position": envelope.position})
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_PARK, (projection, source, envelope.position, envelope.id,
                            envelope.subject, envelope.type, reason,
                            Jsonb(_without_nul(envelope.to_cloudevent()))))
        record(cur, group.names, source, envelope.position)


def park_undecodable(conn: Connection[Any], group: ProjectionGroup, notification: Notification,
                     source: str, error: BaseException,
                     names: Sequence[str] | None = None) -> None:
    """Park a stored event this code cannot decode, as the Faust worker parks a message
    it cannot read: the group goes on past it (a rebuild after the upgrade applies it)."""
    projection = group.names[0]
    log.error("projection %s parked stored event %s (aggregate %s, version %d, position %d "
              "from %s): cannot decode it: %s", projection, notification.topic,
              notification.originator_id, notification.originator_version, notification.id,
              source, _summary(error),
              extra={"aggregate_id": str(notification.originator_id),
                     "position": notification.id})
    aggregate = cast(UUID, notification.originator_id)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_PARK, (projection, source, notification.id,
                            event_id(aggregate, notification.originator_version), aggregate,
                            notification.topic,
                            _without_nul(f"{type(error).__name__}: {error}")[:_ERROR_CHARS],
                            Jsonb({"topic": notification.topic,
                                   "version": notification.originator_version})))
        record(cur, names or group.names, source, notification.id)  # names: a rebuild's


def count_parked(conn: Connection[TupleRow]) -> dict[str, int]:
    """Parked events per projection (projections with none are absent)."""
    rows = conn.execute(
        "SELECT projection, count(*) FROM projection_dead_letters GROUP BY projection"
    ).fetchall()
    return {str(projection): int(count) for projection, count in rows}


def _summary(error: BaseException) -> str:
    """The error without PostgreSQL's DETAIL and CONTEXT, which quote the event's data
    (names, numbers: personal details); the full text is in the parked row."""
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        return f"{type(error).__name__} ({error.sqlstate}): {error.diag.message_primary}"
    return type(error).__name__


def _without_nul(value: Any) -> Any:
    """`value` with every U+0000 in its strings (and keys) written as the text ``\\u0000``."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value
