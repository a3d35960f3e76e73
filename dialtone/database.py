"""Where the database is, how eventsourcing reaches it, and its schema.

The event store tables belong to eventsourcing (it creates them); everything
else (projections, positions) is created by yoyo migrations under migrations/.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dialtone.services.postgres import EmbeddedPostgres, ServerLease
from dialtone.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
DEFAULT_DATABASE = "dialtone"
# Set in a child's environment by a parent that created the event store's tables
# before starting it: the child leaves the DDL alone (see eventsourcing_env).
EVENT_TABLES_READY = "DIALTONE_EVENT_TABLES_READY"

# This process's share of each embedded server it uses, by data directory.
_leases: dict[Path, ServerLease] = {}


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir / "postgres", settings.embedded_pg_port)


def resolve_dsn(settings: Settings) -> str:
    """DATABASE_URL when set; otherwise start (or reuse) the embedded server, counted as
    one of its users until ``release_embedded`` or the end of the process."""
    if settings.database_url:
        return settings.database_url
    server = embedded_server(settings)
    lease = _leases.setdefault(server.data_dir, ServerLease(server))
    lease.acquire()
    dsn = server.dsn(DEFAULT_DATABASE)
    ensure_database(dsn)
    return dsn


def release_embedded(settings: Settings) -> bool:
    """Leave the embedded server: stopped if no other command uses it (True then)."""
    if settings.database_url:
        return False
    lease = _leases.pop(embedded_server(settings).data_dir, None)
    stopped = lease is not None and lease.release()
    if stopped:
        log.info("embedded PostgreSQL stopped")
    return stopped


def with_database(dsn: str, database: str) -> str:
    return make_conninfo(dsn, dbname=database)


def ensure_database(dsn: str) -> None:
    """Create the DSN's database if it does not exist yet."""
    name = str(conninfo_to_dict(dsn).get("dbname") or DEFAULT_DATABASE)
    with psycopg.connect(with_database(dsn, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)


def drop_database(dsn: str) -> None:
    name = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(with_database(dsn, "postgres"), autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def eventsourcing_env(dsn: str, **overrides: str) -> dict[str, str]:
    """The environment eventsourcing's PostgreSQL persistence module reads."""
    params = conninfo_to_dict(dsn)
    env = {
        # eventsourcing.postgres with its DDL serialised across processes.
        "PERSISTENCE_MODULE": "dialtone.event_store_ddl:SerialDDLPostgresFactory",
        "POSTGRES_DBNAME": str(params.get("dbname") or DEFAULT_DATABASE),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        # A parent that created the tables says so: its children skip the DDL and
        # its lock at start (processes that start alone take turns: event_store_ddl).
        "CREATE_TABLE": "n" if os.environ.get(EVENT_TABLES_READY) == "1" else "y",
    }
    env.update(overrides)
    return env
