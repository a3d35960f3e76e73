"""The queue counters of GET /metrics on the real app and database: one series per
tenant and queue (two tenants may each have a queue `sales`: labelled by key alone,
their samples came out twice under the same labels), and queue_live's short abandons
(migration 0027), which the service level leaves out, counted live, after a rebuild,
and by the migration from the visits already projected."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from application.callcentre import CallCentreService
from dialtone.commands.rebuild import rebuild_projections
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections import callcentre
from streams.inprocess import InProcessProjectionRunner
from tests.integration.api_support import running_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIGRATION = "0027_queue_short_abandons"


def _abandon(service: CallCentreService, queue_id: UUID, at: datetime, wait_s: float) -> None:
    call = uuid4()
    service.enqueue_call(queue_id, call, 0, at)
    service.abandon_call(queue_id, call, at + timedelta(seconds=wait_s))


def _project(database_url: str, script: dict[str, list[float]]) -> None:
    """For each tenant, a queue `sales` (T = 20 s, short abandons under 5 s) and a call
    abandoned after each wait of its list; projected by the in-process runner."""
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        for tenant, waits in script.items():
            queue = service.scoped(tenant).create_queue("sales", "Sales", "longest_idle",
                                                        occurred_at=T0, service_level_s=20.0)
            for n, wait_s in enumerate(waits):
                _abandon(service, queue.id, T0 + timedelta(minutes=n + 1), wait_s)
        InProcessProjectionRunner(service, database_url, [callcentre.GROUP]).catch_up()


def _short_abandoned(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT tenant, short_abandoned FROM queue_live").fetchall()
    return {str(tenant): int(count) for tenant, count in rows}


def test_each_tenants_queue_of_the_same_key_has_its_own_series(database_url: str) -> None:
    # acme: one short abandon (2 s); globex: two callers gone after 10 s and 30 s, not
    # short, the first within T.
    _project(database_url, {"acme": [2.0], "globex": [10.0, 30.0]})
    with running_api(database_url) as client:
        response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    samples = [s for family in text_string_to_metric_families(response.text)
               for s in family.samples if s.name.startswith("dialtone_queue_calls_")]
    keys = Counter((s.name, tuple(sorted(s.labels.items()))) for s in samples)
    assert [key for key, seen in keys.items() if seen > 1] == [], "duplicate samples"
    figures = {(s.name.removeprefix("dialtone_queue_calls_").removesuffix("_total"),
                s.labels.get("tenant"), s.labels["queue"]): s.value for s in samples}
    assert {(name, tenant): value for (name, tenant, queue), value in figures.items()
            if queue == "sales"} == {
        ("offered", "acme"): 1, ("answered", "acme"): 0, ("answered_within_sl", "acme"): 0,
        ("abandoned", "acme"): 1, ("abandoned_within_sl", "acme"): 1,
        ("short_abandoned", "acme"): 1,
        ("offered", "globex"): 2, ("answered", "globex"): 0,
        ("answered_within_sl", "globex"): 0, ("abandoned", "globex"): 2,
        ("abandoned_within_sl", "globex"): 1, ("short_abandoned", "globex"): 0}


def test_the_projection_counts_short_abandons_and_a_rebuild_counts_them_again(
        database_url: str) -> None:
    with CallCentreService(env=eventsourcing_env(database_url)) as service:
        queue = service.scoped("acme").create_queue("sales", "Sales", "longest_idle",
                                                    occurred_at=T0, service_level_s=20.0)
        _abandon(service, queue.id, T0 + timedelta(minutes=1), 2.0)  # short (under 5 s)
        _abandon(service, queue.id, T0 + timedelta(minutes=2), 10.0)  # not short
        later = T0 + timedelta(minutes=3)
        service.configure_queue(queue.id, lambda q: q.set_short_abandon(15.0, later))
        _abandon(service, queue.id, T0 + timedelta(minutes=4), 10.0)  # short now
        InProcessProjectionRunner(service, database_url, [callcentre.GROUP]).catch_up()
    assert _short_abandoned(database_url) == {"acme": 2}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE queue_live SET short_abandoned = 0")

    rebuild_projections(database_url, ("queue_live",))

    assert _short_abandoned(database_url) == {"acme": 2}


def test_the_migration_counts_the_short_abandons_already_projected(database_url: str) -> None:
    _project(database_url, {"acme": [1.0, 3.0, 8.0], "globex": [9.0]})
    # As a database before 0027: no column, the migration not applied.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE queue_live DROP COLUMN short_abandoned")
        conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = %s", (MIGRATION,))

    assert MIGRATION in apply_migrations(database_url)

    assert _short_abandoned(database_url) == {"acme": 2, "globex": 0}
