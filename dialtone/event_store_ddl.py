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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, ProcessRecorder
from eventsourcing.postgres import PostgresFactory, TPostgresTrackingRecorder

# pg_advisory_lock's key for the event store's DDL (the bytes of "dialtone" as a bigint).
DDL_LOCK_KEY = int.from_bytes(b"dialtone", "big") >> 1


class SerialDDLPostgresFactory(PostgresFactory):
    """PostgresFactory whose recorders create their tables under a cross-process lock."""

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self._ddl_turn():
            return super().aggregate_recorder(purpose)

    def application_recorder(self) -> ApplicationRecorder:
        with self._ddl_turn():
            return super().application_recorder()

    def tracking_recorder(
        self, tracking_recorder_class: type[TPostgresTrackingRecorder] | None = None,
    ) -> TPostgresTrackingRecorder:
        with self._ddl_turn():
            return super().tracking_recorder(tracking_recorder_class)

    def process_recorder(self) -> ProcessRecorder:
        with self._ddl_turn():
            return super().process_recorder()

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
