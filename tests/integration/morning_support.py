"""The morning's call-centre history (tests/integration/test_callcentre_projections.py,
``history``) projected into a database of its own, for the tests that only read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from projections import callcentre, interval_buckets
from tests.integration.test_callcentre_projections import history


@contextmanager
def morning_database(pg_admin_dsn: str, *, buckets: bool = False,
                     time_zone: str | None = None) -> Iterator[str]:
    """A migrated database with the morning projected, dropped afterwards. ``buckets``:
    the interval buckets computed too (the refresher's work: the apply only marks
    them); ``time_zone``: the default tenant's, as a row of its own."""
    database_url = with_database(pg_admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        apply_migrations(database_url)
        _, events = history()
        with psycopg.connect(database_url, autocommit=True) as conn:
            callcentre.apply_batch(conn, events, "store:test")
            if buckets:
                interval_buckets.refresh_dirty(conn)
            if time_zone is not None:
                conn.execute("INSERT INTO tenants (id, name, time_zone)"
                             " VALUES ('default', 'Default', %s)", (time_zone,))
        yield database_url
    finally:
        drop_database(database_url)
