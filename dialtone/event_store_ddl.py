"""eventsourcing's PostgreSQL persistence, with its DDL run by one process at a time.

eventsourcing creates its tables, composite types and functions when an application
starts (CREATE_TABLE=y). Its statements say IF NOT EXISTS, but two processes running
them at once on a new database still collide in PostgreSQL's catalog: the second
CREATE TYPE fails on pg_type's unique index ("duplicate key value violates unique
constraint pg_type_typname_nsp_index"), or CREATE OR REPLACE FUNCTION on "tuple
concurrently updated". A relay and a worker started together on an empty database
then crash at start.

This factory takes a session-level advisory lock on its own connection around each
recorder's DDL, so the processes create the schema in turn; the later ones find it
made. eventsourcing_env names this class as the PERSISTENCE_MODULE.

An events table whose table, index, composite type and insert function all exist
needs no DDL: its recorder skips it and the lock. Otherwise one table held by a
long transaction (a LOCK TABLE, a migration) stalled every other process's start:
the process whose DDL waited on that table held the one lock the others queued on
(a B2BUA worker stopping could not store its calls' ends while the call-centre
table was locked). Tracking tables keep eventsourcing's DDL every time: it
migrates their layout between its versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, ProcessRecorder
from eventsourcing.postgres import PostgresFactory, TPostgresTrackingRecorder
from psycopg import sql

# pg_advisory_lock's key for the event store's DDL (the bytes of "dialtone" as a bigint).
DDL_LOCK_KEY = int.from_bytes(b"dialtone", "big") >> 1


class SerialDDLPostgresFactory(PostgresFactory):
    """PostgresFactory whose recorders create their tables under a cross-process lock."""

    _ddl_skipped = False

    def env_create_table(self) -> bool:
        return not self._ddl_skipped and super().env_create_table()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self._ddl_unless_made(self._events_table(purpose), notifications=False):
            return super().aggregate_recorder(purpose)

    def application_recorder(self) -> ApplicationRecorder:
        with self._ddl_unless_made(self._events_table("events"), notifications=True):
            return super().application_recorder()

    def tracking_recorder(
        self, tracking_recorder_class: type[TPostgresTrackingRecorder] | None = None,
    ) -> TPostgresTrackingRecorder:
        with self._ddl_turn():
            return super().tracking_recorder(tracking_recorder_class)

    def process_recorder(self) -> ProcessRecorder:
        with self._ddl_turn():
            return super().process_recorder()

    def _events_table(self, purpose: str) -> str:
        return (self.env.name.lower() or "stored") + "_" + purpose  # as PostgresFactory

    @contextmanager
    def _ddl_unless_made(self, table: str, *, notifications: bool) -> Iterator[None]:
        if not (self.env_create_table() and self._events_table_made(table, notifications)):
            with self._ddl_turn():
                yield
            return
        self._ddl_skipped = True
        try:
            yield
        finally:
            self._ddl_skipped = False

    def _events_table_made(self, table: str, notifications: bool) -> bool:
        """Whether everything eventsourcing's DDL makes for ``table`` exists (catalog
        lookups only: no lock on the table itself)."""
        schema, id_type = self.datastore.schema, self.datastore.originator_id_type
        names = [(table, "to_regclass"), (f"stored_event_{id_type}", "to_regtype")]
        if notifications:  # an application recorder's: its index and insert function
            names += [(f"{table}_notification_id_idx", "to_regclass"),
                      (f"es_insert_events_{id_type}", "to_regproc")]
        checks = sql.SQL(" AND ").join(
            sql.SQL("{}({}) IS NOT NULL").format(sql.SQL(function), sql.Literal(
                sql.Identifier(schema, name).as_string())) for name, function in names)
        with self.datastore.get_connection() as conn:
            row = conn.execute(sql.SQL("SELECT {} AS made").format(checks)).fetchone()
        return bool(row and row["made"])

    @contextmanager
    def _ddl_turn(self) -> Iterator[None]:
        if not self.env_create_table():
            yield
            return
        # Its own connection, not one of the pool's: a worker's pool has two at most,
        # and the DDL below takes them in turn.
        with psycopg.connect(autocommit=True, **self._connect_kwargs()) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))

    def _connect_kwargs(self) -> dict[str, Any]:
        pool = self.datastore.pool
        # eventsourcing builds its pool with a dict of keyword arguments (PostgresDatastore).
        assert isinstance(pool.kwargs, dict)
        kwargs = {k: v for k, v in pool.kwargs.items() if k != "row_factory"}
        get_password = pool.get_password_func
        if get_password is not None:
            kwargs["password"] = get_password()
        return kwargs
