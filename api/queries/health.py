"""What health and projection lag read: heartbeats, positions, store heads, parked events."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

_HEARTBEATS = """
SELECT service, instance, pid, host, started_at, beat_at, interval_s, stopped_at, detail,
       extract(epoch FROM now() - beat_at)::float8 AS seconds_since_beat
FROM service_heartbeats ORDER BY service, instance
"""
_POSITIONS = """
SELECT projection, source, position, updated_at,
       extract(epoch FROM now() - updated_at)::float8 AS seconds_since_advance
FROM projection_positions ORDER BY projection, source
"""
_PARKED = """
SELECT projection, source, count(*)::bigint AS parked
FROM projection_dead_letters GROUP BY projection, source
"""


async def heartbeats(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(_HEARTBEATS))


async def positions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(_POSITIONS))


async def missing_tables(conn: asyncpg.Connection, tables: Iterable[str]) -> list[str]:
    """The tables among `tables` that do not exist (in the search path)."""
    names = list(tables)
    rows = await conn.fetch(
        "SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL", names)
    return [str(row["name"]) for row in rows]


async def webhooks_active(conn: asyncpg.Connection) -> bool:
    """Whether any tenant has an active webhook subscription (False before its table)."""
    if await missing_tables(conn, ["webhook_subscriptions"]):
        return False
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE status = 'active')"))


async def waiting_calls(conn: asyncpg.Connection) -> tuple[int, float | None] | None:
    """Calls waiting for an earlier event (call_projection_gaps), and the oldest's wait
    in seconds; None before that table exists."""
    if await missing_tables(conn, ["call_projection_gaps"]):
        return None
    row = await conn.fetchrow("SELECT count(*)::bigint AS calls, extract(epoch FROM now()"
                              " - min(since))::float8 AS oldest FROM call_projection_gaps")
    assert row is not None
    return int(row["calls"]), row["oldest"]


async def parked(conn: asyncpg.Connection) -> dict[tuple[str, str], int] | None:
    """Parked events per (projection group, source); None before that table exists."""
    if await missing_tables(conn, ["projection_dead_letters"]):
        return None
    return {(r["projection"], r["source"]): int(r["parked"]) for r in await conn.fetch(_PARKED)}


async def store_heads(conn: asyncpg.Connection, tables: Iterable[str]) -> dict[str, int]:
    """The highest notification id of each existing events table (0 when empty).

    The names come from the configuration and from eventsourcing's own naming
    rule, never from a request; they are quoted as identifiers all the same.
    """
    wanted = sorted(set(tables))
    present = set(wanted) - set(await missing_tables(conn, wanted))
    heads: dict[str, int] = {}
    for table in sorted(present):
        quoted = '"' + table.replace('"', '""') + '"'
        value = await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {quoted}")  # noqa: S608 - identifier quoted above
        heads[table] = int(value)
    return heads
