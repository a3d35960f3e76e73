"""The SQL queries of the dialtone Grafana dashboards (``dialtone.grafana.dashboards``).

- the heartbeats table of **Operations** reads ``service_heartbeats``: liveness is a
  database row, not a Prometheus series;
- **Supervisor** reads the projection tables: queues live, agents by state, CDR volume
  (issue 10, section 4).

Every query is a module constant with the columns it returns, so tests run each one
against the real schema after a real call. The SQL uses only PostgreSQL's own functions
(``date_trunc``, ``count(*) FILTER``, ``EXTRACT``), never TimescaleDB's
(``time_bucket``...), so one query serves both migration paths: on the TimescaleDB path
the same tables are hypertables, which plain SQL reads as is.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialtone.grafana.sql import Format
from projections import kpi


@dataclass(frozen=True)
class Query:
    """One SQL panel query and the columns it returns (a test runs it)."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"


# A heartbeat is stale past 3 of its process's intervals (Settings.heartbeat_stale_after's
# default, as /healthz judges it).
HEARTBEATS = Query(
    "SELECT service, instance, host, pid,\n"
    "  CASE WHEN stopped_at IS NOT NULL THEN 'stopped'\n"
    "       WHEN beat_at < now() - make_interval(secs => interval_s * 3)"
    " THEN 'stale'\n"
    "       ELSE 'running' END AS status,\n"
    "  EXTRACT(EPOCH FROM now() - beat_at)::float8 AS last_beat_s,\n"
    "  started_at\n"
    "FROM service_heartbeats\n"
    "ORDER BY service, instance",
    ("service", "instance", "host", "pid", "status", "last_beat_s", "started_at"))


# --- Supervisor: SQL on the projection tables ----------------------------------------
# $tenant is the dashboard's multi-value variable: Grafana quotes each chosen value
# ('a','b'), so `tenant IN ($tenant)` is how SQL datasources take it.

TENANT_VARIABLE = Query(
    "SELECT tenant FROM queue_live UNION SELECT tenant FROM agent_state ORDER BY 1",
    ("tenant",))
CALLS_WAITING = Query(
    "SELECT count(*) AS waiting FROM queue_calls WHERE tenant IN ($tenant)", ("waiting",))
OLDEST_WAIT = Query(
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(enqueued_at)), 0)::float8 AS oldest_wait_s\n"
    "FROM queue_calls WHERE tenant IN ($tenant)", ("oldest_wait_s",))
CALLS_IN_PROGRESS = Query(
    "SELECT count(*) AS calls FROM call_live WHERE tenant IN ($tenant)", ("calls",))
# Queue figures over today and the last 15 minutes: the sums are projections/kpi.py's
# QUEUE_SUMS itself (the wallboard's), for every chosen tenant; the ratios are kpi.py's
# (service level: short abandons excluded). "Today" starts at each tenant's local
# midnight (a correlated subquery on tenants: `tenant` is the summed table's column;
# UTC for a tenant without a row, as GET /v1/live does).
_TENANT_ZONE = "COALESCE((SELECT z.time_zone FROM tenants z WHERE z.id = tenant), 'UTC')"
_TENANT_MIDNIGHT = (f"(date_trunc('day', now() AT TIME ZONE {_TENANT_ZONE})"
                    f" AT TIME ZONE {_TENANT_ZONE})")
_WINDOW_COLUMNS = ("offered", "answered", "abandoned", "short_abandons", "transferred_in",
                   "transferred_out", "overflowed", "service_level", "asa_s", "aht_s",
                   "longest_wait_s", "abandonment_rate")


def _queue_figures(since_sql: str, now_columns: bool) -> Query:
    sums = (kpi.QUEUE_SUMS.strip().replace("tenant = $1", "tenant IN ($tenant)")
            .replace("$2", since_sql).replace("$3", "now()"))
    now = ("  (SELECT count(*) FROM queue_calls c WHERE c.queue_id = q.queue_id) AS waiting,\n"
           "  COALESCE((SELECT EXTRACT(EPOCH FROM now() - min(c.enqueued_at)) FROM queue_calls c"
           " WHERE c.queue_id = q.queue_id), 0)::float8 AS oldest_wait_s,\n"
           if now_columns else "")
    return Query(
        "SELECT q.key AS queue, q.name,\n" + now +
        "  COALESCE(s.offered, 0) AS offered, COALESCE(s.answered, 0) AS answered,\n"
        "  COALESCE(s.abandoned, 0) AS abandoned,"
        " COALESCE(s.short_abandoned, 0) AS short_abandons,\n"
        "  COALESCE(s.transferred_in, 0) AS transferred_in,"
        " COALESCE(s.transferred_out, 0) AS transferred_out,\n"
        "  COALESCE(s.overflowed, 0) AS overflowed,\n"
        "  s.answered_within_sl::float8 / NULLIF(s.offered - s.short_abandoned, 0)"
        " AS service_level,\n"
        "  s.answered_wait_s / NULLIF(s.answered, 0) AS asa_s,\n"
        "  s.handle_s / NULLIF(s.handled, 0) AS aht_s,\n"
        "  s.longest_wait_s,\n"
        "  s.abandoned::float8 / NULLIF(s.offered - s.short_abandoned, 0)"
        " AS abandonment_rate\n"
        f"FROM queue_live q LEFT JOIN (\n{sums}\n) s ON s.queue_id = q.queue_id\n"
        "WHERE q.tenant IN ($tenant)\n"
        "ORDER BY q.key",
        ("queue", "name", *(("waiting", "oldest_wait_s") if now_columns else ()),
         *_WINDOW_COLUMNS))


QUEUES = _queue_figures(_TENANT_MIDNIGHT, now_columns=True)  # now, and today
QUEUES_WINDOW = _queue_figures("now() - interval '15 minutes'", now_columns=False)
AGENT_STATES = ("available", "reserved", "on_call", "wrap_up", "paused")
QUEUE_AGENTS = Query(
    "SELECT q.key AS queue,\n"
    "  count(*) FILTER (WHERE a.state <> 'logged_out') AS staffed,\n"
    + "".join(f"  count(*) FILTER (WHERE a.state = '{s}') AS {s},\n" for s in AGENT_STATES)
    + "  count(*) FILTER (WHERE a.state = 'logged_out') AS logged_out\n"
    "FROM queue_live q\n"
    "JOIN queue_members m ON m.queue_id = q.queue_id\n"
    "JOIN agent_state a ON a.agent_id = m.agent_id\n"
    "WHERE q.tenant IN ($tenant)\n"
    "GROUP BY q.key\n"
    "ORDER BY q.key",
    ("queue", "staffed", *AGENT_STATES, "logged_out"))
AGENTS_BY_STATE = Query(
    "SELECT state, count(*) AS agents FROM agent_state WHERE tenant IN ($tenant)\n"
    "GROUP BY state ORDER BY state", ("state", "agents"))
AGENTS = Query(
    "SELECT key AS agent, name, state,\n"
    "  EXTRACT(EPOCH FROM now() - state_since)::float8 AS in_state_s,\n"
    "  pause_reason, calls_handled, missed_offers\n"
    "FROM agent_state WHERE tenant IN ($tenant)\n"
    "ORDER BY key",
    ("agent", "name", "state", "in_state_s", "pause_reason", "calls_handled", "missed_offers"))
_FINISHED_CALLS = ("FROM cdr\n"
                   "WHERE $__timeFilter(started_at) AND ended_at IS NOT NULL"
                   " AND tenant IN ($tenant)\n")
CALLS_PER_HOUR = Query(
    "SELECT date_trunc('hour', started_at) AS time,\n"
    "  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,\n"
    "  count(*) FILTER (WHERE answered_at IS NULL) AS not_answered\n"
    + _FINISHED_CALLS +
    "GROUP BY 1\n"
    "ORDER BY 1",
    ("time", "answered", "not_answered"), "time_series")
CALLS_BY_QUEUE = Query(
    "SELECT COALESCE(queue, '-') AS queue, COALESCE(disposition, status) AS outcome,\n"
    "  count(*) AS calls, avg(wait_s) AS avg_wait_s, avg(talk_s) AS avg_talk_s,\n"
    "  avg(mos) AS avg_mos\n"
    + _FINISHED_CALLS +
    "GROUP BY 1, 2\n"
    "ORDER BY 1, 2",
    ("queue", "outcome", "calls", "avg_wait_s", "avg_talk_s", "avg_mos"))
