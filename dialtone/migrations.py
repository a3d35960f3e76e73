"""Applies the SQL under migrations/ with yoyo.

migrations/schema holds the tables every deployment has; then either
migrations/timescale (when the server offers the timescaledb extension) or
migrations/plain. yoyo records what it applied, so running it again is a no-op.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations

from dialtone.database import MIGRATIONS_DIR

log = logging.getLogger(__name__)


def timescale_available(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    return row is not None


def migration_dirs(dsn: str) -> list[Path]:
    variant = "timescale" if timescale_available(dsn) else "plain"
    return [MIGRATIONS_DIR / "schema", MIGRATIONS_DIR / variant]


def yoyo_url(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    user = params.get("user") or "postgres"
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host") or "127.0.0.1"
    port = params.get("port") or "5432"
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{params['dbname']}"


def apply_migrations(dsn: str) -> list[str]:
    """Apply pending migrations; return the ids applied (empty when up to date)."""
    dirs = migration_dirs(dsn)
    backend = get_backend(yoyo_url(dsn))
    migrations = read_migrations(*(str(d) for d in dirs))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    log.info("migrations from %s: applied %s", [d.name for d in dirs], applied or "none")
    return applied
