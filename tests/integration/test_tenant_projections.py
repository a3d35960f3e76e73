"""Every projection row carries its tenant (real PostgreSQL): agent_state,
agent_state_intervals, queue_live, queue_members, queue_calls,
callcentre_events, call_live, call_events and cdr; also when a call's or an
aggregate's later events arrive before its first one, and after a rebuild.
Events stored before tenants existed (no `tenant` field) land in `default`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from domain.call import Direction
from projections import callcentre, calls
from projections.envelope import EventEnvelope, decode
from streams.rebuild import REBUILDABLE, rebuild

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    apply_migrations(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _call(call_id: UUID, first_position: int, tenant: str | None) -> list[EventEnvelope]:
    initiated: dict[str, object] = {"caller": "1001", "callee": "2001", "direction": "inbound",
                                    "trunk": None, "sip_call_id": f"{call_id}@h"}
    if tenant is not None:
        initiated["tenant"] = tenant
    steps: list[tuple[str, dict[str, object]]] = [
        ("initiated", initiated), ("routed", {"target": "queue:sales"}), ("ringing", {})]
    return [EventEnvelope(id=uuid4(), type=f"dialtone.call.{name}.v1", subject=call_id,
                          version=i + 1, position=first_position + i,
                          occurred_at=T0 + timedelta(seconds=i), data=data)
            for i, (name, data) in enumerate(steps)]


def _tenants(conn: Conn, table: str, column: str, ident: UUID) -> set[object]:
    rows = conn.execute(f"SELECT DISTINCT tenant FROM {table} WHERE {column} = %s",
                        (ident,)).fetchall()
    return {row[0] for row in rows}


def test_call_rows_carry_the_calls_tenant_in_any_order(conn: Conn) -> None:
    in_order, late_first, old = uuid4(), uuid4(), uuid4()
    calls.apply_batch(conn, _call(in_order, 1, "acme"), "test")
    events = _call(late_first, 10, "acme")
    calls.apply_batch(conn, events[1:], "test")  # the first event comes last
    calls.apply_batch(conn, events[:1], "test")
    calls.apply_batch(conn, _call(old, 20, None), "test")  # stored before tenants
    for call_id, tenant in ((in_order, "acme"), (late_first, "acme"), (old, "default")):
        assert _tenants(conn, "call_events", "call_id", call_id) == {tenant}
        assert _tenants(conn, "cdr", "call_id", call_id) == {tenant}
        assert _tenants(conn, "call_live", "call_id", call_id) == {tenant}


def _centre_history(database_url: str) -> list[EventEnvelope]:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        acme = service.scoped("acme")
        agent = acme.create_agent("alice", "Alice", occurred_at=T0)
        queue = acme.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
        acme.add_member(queue.id, agent.id, 0, T0)
        acme.login(agent.id, "sip:alice@127.0.0.1", T0 + timedelta(seconds=1))
        service.enqueue_call(queue.id, uuid4(), 0, T0 + timedelta(seconds=2))
        service.create_agent("bob", "Bob", occurred_at=T0)  # the router's: default
        return decode(service, service.recorder.select_notifications(1, 1000))


def test_call_centre_rows_carry_their_aggregates_tenant(conn: Conn, database_url: str) -> None:
    history = _centre_history(database_url)
    # Every aggregate's later events first, then the created ones: the worst order.
    later = [e for e in history if e.version > 1]
    callcentre.apply_batch(conn, later, "test")
    callcentre.apply_batch(conn, [e for e in history if e.version == 1], "test")
    assert conn.execute("SELECT key, tenant FROM agent_state ORDER BY key").fetchall() == [
        ("alice", "acme"), ("bob", "default")]
    assert conn.execute("SELECT key, tenant FROM queue_live").fetchall() == [("sales", "acme")]
    for table in ("queue_members", "queue_calls"):
        assert conn.execute(f"SELECT DISTINCT tenant FROM {table}").fetchall() == [
            ("acme",)]
    alice = next(e.subject for e in history if e.data.get("key") == "alice")
    assert _tenants(conn, "agent_state_intervals", "agent_id", alice) == {"acme"}
    assert _tenants(conn, "callcentre_events", "aggregate_id", alice) == {"acme"}
    bob = next(e.subject for e in history if e.data.get("key") == "bob")
    assert _tenants(conn, "callcentre_events", "aggregate_id", bob) == {"default"}


def test_two_tenants_may_project_the_same_key(conn: Conn, database_url: str) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        for tenant in ("acme", "globex"):
            service.scoped(tenant).create_agent("alice", "Alice", occurred_at=T0)
        callcentre.apply_batch(conn, decode(service, service.recorder.select_notifications(
            1, 100)), "test")
    assert conn.execute("SELECT tenant FROM agent_state WHERE key = 'alice' ORDER BY 1"
                        ).fetchall() == [("acme",), ("globex",)]


def test_a_rebuild_reproduces_the_calls_tenants(conn: Conn, database_url: str) -> None:
    with CallService(env=eventsourcing_env(database_url)) as service:
        ids = {tenant: service.initiate_call(
            caller="1001", callee="2001", direction=Direction.INBOUND, trunk=None,
            sip_call_id=f"{tenant}@rebuild", occurred_at=T0, tenant=tenant)
            for tenant in ("acme", "default")}
        for call_id in ids.values():
            service.route_call(call_id, "queue:sales", T0 + timedelta(seconds=1))
        rebuild(service, database_url, REBUILDABLE)
    for tenant, call_id in ids.items():
        for table in ("call_events", "cdr", "call_live"):
            assert _tenants(conn, table, "call_id", call_id) == {tenant}
