"""Webhook subscriptions and their delivery log, always within one tenant: a row of
another tenant is never read or changed (its id answers 404)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

_PUBLIC = """
SELECT s.id, s.url, s.event_types, s.status, s.failing_since, s.disabled_reason,
       s.delivered_position, s.created_at, s.updated_at,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.subscription_id = s.id AND d.state = 'pending') AS pending
FROM webhook_subscriptions s
"""


async def create(conn: asyncpg.Connection, id_: UUID, tenant: str, url: str,
                 event_types: Sequence[str], secret: str) -> dict[str, Any]:
    await conn.execute("INSERT INTO webhook_subscriptions (id, tenant, url, event_types, secret)"
                       " VALUES ($1, $2, $3, $4, $5)", id_, tenant, url, list(event_types),
                       secret)
    found = await get(conn, id_, tenant)
    if found is None:  # inserted just above: only a concurrent delete gets here
        raise LookupError(f"webhook {id_} vanished")
    return found


async def get(conn: asyncpg.Connection, id_: UUID, tenant: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_PUBLIC + " WHERE s.id = $1 AND s.tenant = $2", id_, tenant)
    return None if row is None else dict(row)


async def list_all(conn: asyncpg.Connection, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(_PUBLIC + " WHERE s.tenant = $1 ORDER BY s.created_at, s.id", tenant)
    return [dict(r) for r in rows]


async def update(conn: asyncpg.Connection, id_: UUID, tenant: str,
                 changes: dict[str, Any]) -> bool:
    """Set the given columns (url, event_types, secret, status...); False when absent."""
    columns = list(changes)
    assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(columns))
    result: str = await conn.execute(
        f"UPDATE webhook_subscriptions SET {assignments}, updated_at = now() "  # noqa: S608 - column names are ours
        "WHERE id = $1 AND tenant = $2", id_, tenant, *changes.values())
    return result != "UPDATE 0"


async def resume(conn: asyncpg.Connection, id_: UUID, tenant: str) -> bool:
    """Make the subscription active again, its failure clock restarted, and its pending
    deliveries due now (a disabled one's waited up to backoff_max_s, an hour); False
    when absent. Call it in a transaction: both happen or neither."""
    if not await update(conn, id_, tenant, {"status": "active", "failing_since": None,
                                            "disabled_reason": None}):
        return False
    await conn.execute("""
        UPDATE webhook_deliveries SET next_attempt_at = now()
        WHERE subscription_id = $1 AND state = 'pending' AND next_attempt_at > now()
          AND (claimed_until IS NULL OR claimed_until < now())""", id_)
    return True


async def delete(conn: asyncpg.Connection, id_: UUID, tenant: str) -> bool:
    result: str = await conn.execute(
        "DELETE FROM webhook_subscriptions WHERE id = $1 AND tenant = $2", id_, tenant)
    return result != "DELETE 0"


async def attempts(conn: asyncpg.Connection, id_: UUID, limit: int,
                   before: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` of the subscription's attempts, newest first (its tenant is checked
    by the caller), and the `before` of the next page (None on the last page)."""
    rows = await conn.fetch("""
        SELECT a.id AS attempt_id, d.event_id, d.event_type, d.aggregate_id, d.position,
               a.attempt, a.attempted_at, a.status_code, a.error, a.duration_ms,
               d.state = 'delivered' AS delivered
        FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
        WHERE a.subscription_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
        ORDER BY a.id DESC LIMIT $3""", id_, before, limit + 1)
    page = [dict(r) for r in rows[:limit]]
    return page, (page[-1]["attempt_id"] if len(rows) > limit else None)


async def redeliver(conn: asyncpg.Connection, id_: UUID, from_position: int) -> int:
    """Queue again every delivery of the subscription from `from_position` on."""
    result: str = await conn.execute("""
        UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(),
               delivered_at = NULL, claimed_until = NULL
        WHERE subscription_id = $1 AND position >= $2""", id_, from_position)
    return int(result.rsplit(maxsplit=1)[-1])
