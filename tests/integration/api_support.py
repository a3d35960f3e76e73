"""Helpers for the API tests: a running app on a migrated database, and rows
seeded straight into the projection tables (the projections themselves are
tested end to end elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from fastapi import APIRouter
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.types.json import Jsonb

from api.app import create_app
from application.identity.model import DEFAULT_TENANT, Role
from dialtone.bootstrap import http_app
from dialtone.commands.users import issue_api_key
from dialtone.migrations import apply_migrations

PROBLEM = "application/problem+json"


@contextmanager
def running_api(
    database_url: str, *, extra_routers: tuple[APIRouter, ...] = (), raise_errors: bool = True,
    role: Role | None = Role.ADMIN,
) -> Iterator[TestClient]:
    """The real app (lifespan, pool, handlers) on a migrated database. Its client
    sends an API key of `role` (tenant `default`) with every request, unless
    `role` is None."""
    apply_migrations(database_url)
    app = create_app(database_url, extra_routers=extra_routers)
    with TestClient(app, raise_server_exceptions=raise_errors) as client:
        if role is not None:
            client.headers["Authorization"] = f"Bearer {api_key(database_url, role)}"
        yield client


@contextmanager
def platform_api(database_url: str, *, raise_errors: bool = True) -> Iterator[TestClient]:
    """The app `dialtone api` serves (dialtone.bootstrap.http_app: call-centre, auth and
    audit routes, the call-centre service) on a migrated database. Its client sends no
    credential; the service is closed afterwards."""
    apply_migrations(database_url)
    app = http_app(database_url)
    try:
        with TestClient(app, raise_server_exceptions=raise_errors) as client:
            yield client
    finally:
        app.state.callcentre.close()


def api_key(database_url: str, role: Role = Role.ADMIN, tenant: str = DEFAULT_TENANT) -> str:
    """A fresh API key of `role` (its service account is named after the role)."""
    return issue_api_key(database_url, f"test-{role.value}", role, tenant)


def beat(database_url: str, service: str, instance: str, age_s: float, *,
         host: str | None = None, stopped: bool = False) -> None:
    """A heartbeat row last written `age_s` ago (every 5 s), as application.heartbeats
    writes it; `host` defaults to the instance (a replica named after its host)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO service_heartbeats (service, instance, pid, host, started_at, beat_at,"
            " interval_s, stopped_at) VALUES (%(service)s, %(instance)s, 7, %(host)s,"
            " now() - interval '1 day', now() - make_interval(secs => %(age)s), 5,"
            " CASE WHEN %(stopped)s THEN now() - make_interval(secs => %(age)s) END)",
            {"service": service, "instance": instance, "host": host or instance,
             "age": age_s, "stopped": stopped})


def _insert(database_url: str, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(statement, [[row[c] for c in columns] for row in rows])


def cdr_row(started_at: datetime, **overrides: Any) -> dict[str, Any]:
    """A final, answered CDR row with every column set as the projection writes it for
    a real queue call (tests/e2e/test_callcentre_queue.py checks those): an inbound call
    on a provisioned number (its `trunk`), routed to queue `sales`; override any column."""
    row: dict[str, Any] = {
        "call_id": uuid4(), "started_at": started_at, "tenant": DEFAULT_TENANT,
        "direction": "inbound", "caller": "+3225550100", "callee": "+3225550199",
        "final_callee": "queue:sales", "trunk": "+3225550199", "sip_call_id": f"{uuid4()}@sbc",
        "status": "ended", "queue": "sales", "agents": ["agent-7"],
        "queued_at": started_at + timedelta(seconds=1),
        "ringing_at": started_at + timedelta(seconds=8),
        "answered_at": started_at + timedelta(seconds=10),
        "ended_at": started_at + timedelta(seconds=70),
        "wait_s": 9.0, "talk_s": 55.0, "hold_s": 5.0, "hold_count": 1, "hold_started_at": None,
        "wrap_up_s": 12.5, "disposition": "answered", "hangup_cause": "normal_clearing",
        "hangup_side": "caller", "sip_status": 200, "transfers": [],
        "recording_ref": "rec/2025/call.wav", "mos": 4.2, "jitter_ms": 3.5, "loss_pct": 0.25,
        "rtt_ms": 42.0, "last_version": 7, "last_position": 1000,
    }
    row.update(overrides)
    return row


def insert_cdrs(database_url: str, rows: list[dict[str, Any]]) -> None:
    _insert(database_url, "cdr", [{**r, "transfers": Jsonb(r["transfers"])} for r in rows])


def live_row(started_at: datetime, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "call_id": uuid4(), "status": "answered", "direction": "inbound",
        "caller": "+3225550100", "callee": "+3225550199", "target": "agent-7",
        "trunk": "+3225550199", "queue": "sales", "started_at": started_at,
        "answered_at": started_at + timedelta(seconds=10), "on_hold_since": None,
        "last_version": 4, "last_position": 500,
    }
    row.update(overrides)
    return row


def insert_live(database_url: str, rows: list[dict[str, Any]]) -> None:
    _insert(database_url, "call_live", rows)


def insert_events(database_url: str, call_id: UUID, types: list[str], start: datetime) -> None:
    """The call's events with versions 1..n, inserted in reverse order."""
    rows = [
        {"call_id": call_id, "version": version, "occurred_at": start + timedelta(seconds=version),
         "event_id": uuid4(), "position": 100 + version, "type": f"dialtone.call.{name}.v1",
         "data": Jsonb({"n": version})}
        for version, name in enumerate(types, start=1)
    ]
    _insert(database_url, "call_events", rows[::-1])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    return body
