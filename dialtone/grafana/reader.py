"""The database role Grafana's PostgreSQL datasource logs in as: it reads what the
dashboards read and nothing else.

A Grafana editor can run any SQL through the datasource. Logged in as the database
owner, that reaches the token signing keys, the password hashes, the webhook
secrets and the SIP digest hashes. This role instead holds SELECT on the
projection tables the panels query (``DASHBOARD_TABLES``), and on the columns of
``tenants`` they join for a tenant's time zone; every other table, the identity
and secret ones included, answers "permission denied". Its sessions are read-only
by default too.

``grant_reader`` is idempotent: it creates the role or sets its password, then
revokes every table privilege the role holds before granting the current list,
so a table the dashboards stopped reading is no longer readable. Re-run it after
``dialtone migrate`` when a migration adds a table the dashboards read (compose
runs it after every migrate). tests/integration/test_grafana_reader.py runs every
panel's query as this role.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

DEFAULT_ROLE = "dialtone_grafana"
# The tables the dashboards' queries read (dialtone/grafana/queries.py, and the KPI
# SQL of projections/kpi_sql.py they embed): projections and heartbeats.
DASHBOARD_TABLES = ("agent_state", "agent_state_intervals", "call_events", "call_live",
                    "callcentre_events", "cdr", "queue_calls", "queue_handling", "queue_live",
                    "queue_members", "queue_visits", "service_heartbeats")
# tenants, for each tenant's time zone (never its SIP domain).
TENANT_COLUMNS = ("id", "name", "time_zone")


def grant_reader(conn: psycopg.Connection, role: str, password: str) -> None:
    """Make ``role`` a login role that reads the dashboards' tables only (see above)."""
    if not password:
        raise ValueError("the Grafana reader needs a password")
    name = sql.Identifier(role)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
    conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                 .format(verb, name, sql.Literal(password)))
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name))
    database = conn.execute("SELECT current_database()").fetchone()
    assert database is not None
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}")
                 .format(sql.Identifier(database[0]), name))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
    conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(name))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
        sql.SQL(", ").join(sql.Identifier(table) for table in DASHBOARD_TABLES), name))
    conn.execute(sql.SQL("GRANT SELECT ({}) ON tenants TO {}").format(
        sql.SQL(", ").join(sql.Identifier(column) for column in TENANT_COLUMNS), name))
