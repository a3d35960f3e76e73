"""What to send to whom: the one decision both runners use.

The in-process follower (embedded default) and the Kafka consumer group
(`dialtone webhooks`) each hand a batch of EventEnvelopes to `accept`, which in
the caller's transaction learns the tenant of newly created aggregates and queues
one delivery per (subscription, event) the subscription wants. Queueing is
idempotent (one row per subscription and event id), so a batch read twice after a
crash queues nothing twice: together with the runner recording its position (or
committing its Kafka offsets) only after the transaction, that is at least once.

PostgreSQL's jsonb cannot hold U+0000, which an event's strings may (a caller
number is whatever the trunk sent): the queued CloudEvent has every NUL replaced
by U+FFFD, as the audit log does, so such an event is delivered like any other
rather than failing its batch, and every later one, for ever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from projections.envelope import EventEnvelope, tenant_of

ALL_TYPES = "*"
# Paused subscriptions keep queueing (they resume where they stopped); disabled
# ones receive nothing new until resumed.
RECEIVING = ("active", "paused")


@dataclass(frozen=True)
class Subscription:
    id: UUID
    tenant: str
    event_types: frozenset[str]


def wants(subscription: Subscription, envelope: EventEnvelope, tenant: str) -> bool:
    """True when `envelope`, an event of `tenant`, is for `subscription`."""
    if subscription.tenant != tenant:
        return False
    return ALL_TYPES in subscription.event_types or envelope.type in subscription.event_types


def receiving(conn: Connection[Any]) -> list[Subscription]:
    rows = conn.execute(
        "SELECT id, tenant, event_types FROM webhook_subscriptions WHERE status = ANY(%s)",
        (list(RECEIVING),)).fetchall()
    return [Subscription(row[0], row[1], frozenset(row[2])) for row in rows]


def _learn_tenants(conn: Connection[Any], envelopes: Sequence[EventEnvelope]) -> None:
    created = [(e.subject, tenant_of(e.data)) for e in envelopes if e.version == 1]
    if created:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO webhook_aggregates (aggregate_id, tenant) VALUES (%s, %s)"
                            " ON CONFLICT DO NOTHING", created)


def _tenants(conn: Connection[Any], aggregate_ids: Iterable[UUID]) -> dict[UUID, str]:
    rows = conn.execute("SELECT aggregate_id, tenant FROM webhook_aggregates "
                        "WHERE aggregate_id = ANY(%s)", (list(set(aggregate_ids)),)).fetchall()
    return {row[0]: row[1] for row in rows}


def deliveries(subscriptions: Sequence[Subscription], envelopes: Sequence[EventEnvelope],
               tenants: Mapping[UUID, str]) -> list[tuple[Subscription, EventEnvelope]]:
    """Each (subscription, event) pair to queue. An event of an aggregate whose created
    event was never seen belongs to no known tenant and goes nowhere."""
    return [(s, e) for e in envelopes if e.subject in tenants
            for s in subscriptions if wants(s, e, tenants[e.subject])]


_QUEUE = """
INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, aggregate_id,
                                aggregate_version, position, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (subscription_id, event_id) DO NOTHING
"""


def storable(value: Any) -> Any:
    """`value` (a CloudEvent) with every U+0000 in its strings and keys replaced by
    U+FFFD, the replacement character: jsonb refuses NUL."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def accept(conn: Connection[Any], envelopes: Sequence[EventEnvelope]) -> int:
    """Queue the deliveries `envelopes` call for (in the caller's transaction); return
    how many pairs were offered (rows already queued are left as they are)."""
    if not envelopes:
        return 0
    _learn_tenants(conn, envelopes)
    subscriptions = receiving(conn)
    if not subscriptions:
        return 0
    pairs = deliveries(subscriptions, envelopes, _tenants(conn, (e.subject for e in envelopes)))
    wanted = {e.id: e for _, e in pairs}  # one payload per event, however many want it
    payloads = {id_: Jsonb(storable(e.to_cloudevent())) for id_, e in wanted.items()}
    with conn.cursor() as cur:
        cur.executemany(_QUEUE, [
            (s.id, e.id, e.type, e.subject, e.version, e.position, payloads[e.id])
            for s, e in pairs])
    return len(pairs)
