"""What a dispatcher claimed, what its attempts came to, and how that is recorded.

A round records its outcomes as its attempts finish (those that finished while the
last ones were being recorded go together), each time in one transaction of a
fixed number of statements. Only deliveries that are still this dispatcher's are
recorded: a delivery deleted meanwhile (its subscription was deleted) or claimed
again by another dispatcher after this one's lease ran out is left out, and the
rest of the round is recorded all the same.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from application import webhook_metrics as metrics
from application.webhooks import outbox_sql as sql
from application.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)


@dataclass
class Claimed:
    id: int
    subscription_id: UUID
    event_id: UUID
    event_type: str
    aggregate_id: UUID
    aggregate_version: int
    position: int
    body: str  # the CloudEvent as stored (jsonb's text): sent as is, never re-encoded
    attempts: int
    created_at: datetime
    url: str
    secret: str
    lease: datetime  # the claim's claimed_until: while the row carries it, the row is ours


@dataclass(frozen=True)
class AttemptOutcome:
    claimed: Claimed
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: str  # webhook_metrics.OUTCOMES: delivered, or why the attempt failed

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """The wait after failed attempt number `attempt` (1, 2, ...): base * 2^(attempt-1),
    capped, with "full jitter" in its upper half so that many failing deliveries do
    not all come back at the same instant."""
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 62))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """Rows -> one list per column, the arrays the unnest statements take."""
    return tuple([row[i] for row in rows] for i in range(width))


def leases(claimed: Sequence[Claimed]) -> tuple[list[Any], ...]:
    """The (id, lease) arrays of statements that touch only rows still ours."""
    return columns([(c.id, c.lease) for c in claimed], 2)


async def record(conn: AsyncConnection[Any], outcomes: Sequence[AttemptOutcome],
                 settings: WebhookSettings) -> int:
    """Record `outcomes` in one transaction; return how many were still ours.

    The subscriptions are locked first, in id order, then the deliveries: the order
    in which deleting a subscription locks them (its row, then its queue's by the
    cascade), so a delete and a recording wait for each other instead of
    deadlocking, and whichever comes second sees what the first left."""
    if not outcomes:
        return 0
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(sql.LOCK_SUBSCRIPTIONS,
                          (sorted({o.claimed.subscription_id for o in outcomes}),))
        await cur.execute(sql.OURS, leases([o.claimed for o in outcomes]))
        ours = {row[0] for row in await cur.fetchall()}
        kept = [o for o in outcomes if o.claimed.id in ours]
        disabled = await _write(cur, kept, settings)
    if len(kept) < len(outcomes):
        log.warning("webhook dispatcher: %d attempt outcome(s) not recorded: the delivery "
                    "was deleted or another dispatcher took it over after the lease ran out",
                    len(outcomes) - len(kept))
    for subscription in disabled:  # committed: now it is so
        log.warning("webhook subscription %s disabled: every attempt failed for %g s",
                    subscription, settings.disable_after_s)
    metrics.webhooks_disabled(len(disabled))
    return len(kept)


async def _write(cur: Any, outcomes: Sequence[AttemptOutcome],
                 settings: WebhookSettings) -> list[UUID]:
    """The attempts logged, deliveries delivered or retried, subscriptions' positions
    and failure clocks; return the subscriptions this disabled."""
    if not outcomes:
        return []
    s = settings
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    failing = {o.claimed.subscription_id: o.attempted_at for o in failed}
    failing = {k: v for k, v in failing.items()
               if k not in {o.claimed.subscription_id for o in done}}
    await cur.execute(sql.LOG, columns(
        [(o.claimed.id, o.claimed.subscription_id, o.claimed.attempts + 1,
          o.attempted_at, o.status_code, o.error, o.duration_ms) for o in outcomes], 7))
    if done:
        await cur.execute(sql.DELIVERED, ([o.claimed.id for o in done],))
        await cur.execute(sql.SUCCEEDED, columns(_best_positions(done), 2))
    if failed:
        await cur.execute(sql.RETRY, columns([
            (o.claimed.id, backoff_s(o.claimed.attempts + 1, s.backoff_base_s,
                                     s.backoff_max_s)) for o in failed], 2))
    if not failing:
        return []
    await cur.execute(sql.FAILED, columns(list(failing.items()), 2))
    await cur.execute(sql.DISABLE, (list(failing), s.disable_after_s))
    return [row[0] for row in await cur.fetchall()]


def _best_positions(done: Sequence[AttemptOutcome]) -> list[tuple[UUID, int]]:
    best: dict[UUID, int] = {}
    for o in done:
        best[o.claimed.subscription_id] = max(best.get(o.claimed.subscription_id, 0),
                                              o.claimed.position)
    return list(best.items())
