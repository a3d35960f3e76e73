"""Every SQL query of the Grafana dashboards (dialtone/grafana) runs against the real
schema, filled by a real call: a caller dials a queue number through a real B2BUA
worker, the routing process offers the call to a softphone agent who answers, and the
in-process runners project it. Grafana's macros and the tenant variable are expanded
as Grafana expands them; each query must run and return the columns its panel
expects, with the call in it. The plain PostgreSQL path runs here (the embedded
server has no TimescaleDB); the queries use no TimescaleDB function, so the same
SQL reads the hypertables of the TimescaleDB path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from application.callcentre import CallCentreService
from dialtone.bootstrap import inprocess_runners
from dialtone.grafana import dashboards
from dialtone.grafana.dashboards import Query
from dialtone.migrations import apply_migrations
from domain.agent import AgentState
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    agent_state,
    centre,
    login,
    phone,
    provision_queue,
    router,
    wait_for,
)
from tests.fixtures.grafana import grafana_sql
from tests.fixtures.sip import StartWorker

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone", "router"]  # fixtures used by name


def run(database_url: str, query: Query, tenants: tuple[str, ...] = ("default",)) -> Any:
    now = datetime.now(UTC)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        cursor = conn.execute(grafana_sql(query.sql, now - timedelta(hours=6),
                                          now + timedelta(minutes=5), list(tenants)))
        assert cursor.description is not None
        columns = tuple(c.name for c in cursor.description)
        assert columns == query.columns, (query.sql, columns)
        return cursor.fetchall()


def poll(database_url: str, sql: str, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(database_url) as conn:
            if conn.execute(sql).fetchone():
                return
        time.sleep(0.05)
    with psycopg.connect(database_url) as conn:
        cdr = conn.execute("SELECT queue, status, disposition, answered_at, ended_at FROM cdr"
                           ).fetchall()
        positions = conn.execute("SELECT * FROM projection_positions").fetchall()
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: cdr {cdr}, "
                         f"positions {positions}")


@pytest.fixture
def projecting(database_url: str, centre: CallCentreService) -> Iterator[None]:
    """The projection tables, fed by the in-process runners as `dialtone up` runs them."""
    del centre  # the event tables exist first
    apply_migrations(database_url)
    runners = inprocess_runners(database_url)
    for runner in runners:
        runner.start()
    yield
    for runner in runners:
        runner.stop()


def test_every_sql_panel_runs_on_the_projections_of_a_real_call(
    projecting: None, b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService,
    phone: StartPhone, database_url: str,
) -> None:
    del projecting, router
    provision_queue(centre, "sales", ["alice", "bob"], did="5000", wrap_up_s=1.0)
    alice = phone("alice", "--answer-after", "0.5")
    login(centre, "alice", alice)  # bob stays logged out
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    caller.wait("state", state="CONFIRMED")
    alice.wait("incoming", timeout=10)
    alice.wait("state", state="CONFIRMED")
    wait_for(lambda: agent_state(centre, "alice") is AgentState.ON_CALL, "alice on the call")
    caller.send("hangup")
    alice.wait("state", state="DISCONNECTED")
    poll(database_url, "SELECT 1 FROM cdr WHERE queue = 'sales' AND answered_at IS NOT NULL"
         " AND ended_at IS NOT NULL", "the call's CDR")
    poll(database_url, "SELECT 1 FROM service_heartbeats WHERE service = 'b2bua'",
         "the B2BUA's heartbeat")

    results = {query.sql: run(database_url, query) for query in dashboards.SQL_QUERIES}

    def rows(query: Query) -> list[dict[str, Any]]:
        return list(results[query.sql])

    assert rows(dashboards.TENANT_VARIABLE) == [{"tenant": "default"}]
    assert sum(r["answered"] for r in rows(dashboards.CALLS_PER_HOUR)) == 1
    by_queue = {(r["queue"], r["outcome"]): r["calls"] for r in rows(dashboards.CALLS_BY_QUEUE)}
    assert by_queue[("sales", "answered")] == 1
    [queue] = rows(dashboards.QUEUES)
    assert (queue["queue"], queue["offered"], queue["answered"], queue["waiting"]) == (
        "sales", 1, 1, 0)
    assert queue["service_level"] == 1.0  # answered within the default threshold
    [window] = rows(dashboards.QUEUES_WINDOW)  # the same call, in the last 15 minutes
    assert (window["queue"], window["offered"], window["answered"]) == ("sales", 1, 1)
    assert window["service_level"] == 1.0
    [members] = rows(dashboards.QUEUE_AGENTS)
    assert (members["queue"], members["staffed"], members["logged_out"]) == ("sales", 1, 1)
    states = {r["state"]: r["agents"] for r in rows(dashboards.AGENTS_BY_STATE)}
    assert states["logged_out"] == 1
    assert sum(states.values()) == 2
    assert {r["agent"] for r in rows(dashboards.AGENTS)} == {"alice", "bob"}
    assert rows(dashboards.CALLS_WAITING) == [{"waiting": 0}]
    assert rows(dashboards.OLDEST_WAIT) == [{"oldest_wait_s": 0.0}]
    assert "running" in {r["status"] for r in rows(dashboards.HEARTBEATS)
                         if r["service"] == "b2bua"}

    # The tenant variable filters: another tenant's supervisor sees none of it.
    assert run(database_url, dashboards.QUEUES, ("other",)) == []
    assert run(database_url, dashboards.CALLS_BY_QUEUE, ("other",)) == []
    assert run(database_url, dashboards.AGENTS_BY_STATE, ("other", "default")) == rows(
        dashboards.AGENTS_BY_STATE)
