"""The dialtone Grafana dashboards, built with grafana-foundation-sdk's typed builders.

- **Operations** (Prometheus, the series of application/metrics.py and api/metrics.py):
  signalling, media, API, infrastructure and memory, the deployment design's list
  (issue 15, section 4). The heartbeats table reads ``service_heartbeats`` from the
  PostgreSQL datasource: liveness is a database row, not a Prometheus series.
- **Supervisor** (PostgreSQL, the projection tables): queues live, agents by state,
  CDR volume (issue 10, section 4).

Every query is a module constant so tests can run them: each PromQL expression
through ``promtool`` with its metric names checked against the registered series,
each SQL query against the real schema after a real call. The SQL uses only
PostgreSQL's own functions (``date_trunc``, ``count(*) FILTER``, ``EXTRACT``), never
TimescaleDB's (``time_bucket``...), so one query serves both migration paths: on
the TimescaleDB path the same tables are hypertables, which plain SQL reads as is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from dialtone.budgets import load_budgets
from dialtone.grafana.sql import POSTGRES_TYPE, Format, Sql
from projections import kpi

# The datasource uids of infra/grafana/provisioning/datasources/datasources.yml; a
# Grafana the dashboards are pushed to needs datasources with these uids.
PROMETHEUS = models.DataSourceRef(type_val="prometheus", uid="prometheus")
POSTGRES = models.DataSourceRef(type_val=POSTGRES_TYPE, uid="dialtone-postgres")

# Services Prometheus scrapes (a job each, infra/prometheus/prometheus.yml).
SCRAPED = ("api", "relay", "worker", "router", "b2bua")
RATE = "$__rate_interval"  # Grafana's: at least four scrape intervals


@dataclass(frozen=True)
class Query:
    """One SQL panel query and the columns it returns (a test runs it)."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"


# --- Operations: PromQL ------------------------------------------------------------

def _quantile(q: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))"


def _mean(metric: str) -> str:
    return f"sum(rate({metric}_sum[{RATE}])) / sum(rate({metric}_count[{RATE}]))"


_SIP = "dialtone_sip_final_responses_total"
_NOT_SCRAPES = '{route!="/metrics"}'

# panel title -> [(expr, legend)]
SIGNALLING: dict[str, list[tuple[str, str]]] = {
    "Calls vs capacity": [
        ("sum(dialtone_b2bua_calls_active)", "calls"),
        ("sum(dialtone_b2bua_calls_capacity)", "call capacity"),
        ("sum(dialtone_b2bua_legs_active)", "legs"),
        ("sum(dialtone_b2bua_legs_capacity)", "leg capacity"),
    ],
    "SIP final responses by code": [
        (f"sum by (code) (rate({_SIP}[{RATE}]))", "{{code}}"),
    ],
    "INVITE to answer": [
        (_quantile(0.5, "dialtone_sip_invite_to_answer_seconds"), "p50"),
        (_quantile(0.95, "dialtone_sip_invite_to_answer_seconds"), "p95"),
    ],
    "Answer-seizure ratio": [
        (f'sum(rate({_SIP}{{code_class="2xx"}}[{RATE}])) / sum(rate({_SIP}[{RATE}]))',
         "answered / seized"),
    ],
}
MEDIA: dict[str, list[tuple[str, str]]] = {
    "RTP jitter": [
        (_quantile(0.5, "dialtone_rtp_jitter_seconds"), "p50"),
        (_quantile(0.95, "dialtone_rtp_jitter_seconds"), "p95"),
    ],
    "RTP loss": [
        (_mean("dialtone_rtp_loss_ratio"), "mean"),
        (_quantile(0.95, "dialtone_rtp_loss_ratio"), "p95"),
    ],
    "MOS": [
        (_mean("dialtone_rtp_mos"), "mean"),
        (_quantile(0.05, "dialtone_rtp_mos"), "worst 5 %"),
    ],
}
API: dict[str, list[tuple[str, str]]] = {
    "Requests by route and status": [
        (f"sum by (route, status) (rate(dialtone_http_requests_total{_NOT_SCRAPES}[{RATE}]))",
         "{{status}} {{route}}"),
    ],
    "5xx ratio": [
        (f'sum(rate(dialtone_http_requests_total{{route!="/metrics",status=~"5.."}}[{RATE}]))'
         f" / sum(rate(dialtone_http_requests_total{_NOT_SCRAPES}[{RATE}]))", "5xx"),
    ],
    "Latency p99 by route": [
        (_quantile(0.99, "dialtone_http_request_duration_seconds", "route")
         .replace("_bucket[", f"_bucket{_NOT_SCRAPES}["), "{{route}}"),
    ],
}
INFRASTRUCTURE: dict[str, list[tuple[str, str]]] = {
    "Relay lag": [("max by (application) (dialtone_relay_lag_events)", "{{application}}")],
    "Projection lag (seconds behind)": [
        ("max by (projection, application) (dialtone_projection_lag_seconds)",
         "{{projection}} ({{application}})")],
    "Projection lag (events)": [
        ("max by (projection, application) (dialtone_projection_lag_events)",
         "{{projection}} ({{application}})")],
    "Parked events": [
        ("max by (projection, application) (dialtone_projection_parked_events)",
         "{{projection}} ({{application}})")],
    "Database reachable": [("max(dialtone_database_up)", "database up")],
    "Targets up": [(f'up{{job=~"{"|".join(SCRAPED)}"}}', "{{job}} {{instance}}")],
    "Event append p99": [
        (_quantile(0.99, "dialtone_event_append_seconds", "application"), "{{application}}")],
    "Events projected by the workers": [
        (f"sum by (kind) (rate(dialtone_worker_events_applied_total[{RATE}]))", "{{kind}}")],
}
UNITS = {
    "Calls vs capacity": "short", "SIP final responses by code": "cps",
    "INVITE to answer": "s", "Answer-seizure ratio": "percentunit", "RTP jitter": "s",
    "RTP loss": "percentunit", "MOS": "none", "Requests by route and status": "reqps",
    "5xx ratio": "percentunit", "Latency p99 by route": "s", "Relay lag": "short",
    "Projection lag (seconds behind)": "s", "Projection lag (events)": "short",
    "Parked events": "short", "Database reachable": "bool_yes_no", "Targets up": "bool_yes_no",
    "Event append p99": "s", "Events projected by the workers": "ops",
}


def rss_expr(service: str) -> str:
    return f'max by (instance) (process_resident_memory_bytes{{job="{service}"}})'


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

SQL_QUERIES = (HEARTBEATS, TENANT_VARIABLE, CALLS_WAITING, OLDEST_WAIT, CALLS_IN_PROGRESS,
               QUEUES, QUEUES_WINDOW, QUEUE_AGENTS, AGENTS_BY_STATE, AGENTS, CALLS_PER_HOUR,
               CALLS_BY_QUEUE)


# --- Builders -------------------------------------------------------------------------

_LEGEND = (common.VizLegendOptions().show_legend(True)
           .display_mode(common_models.LegendDisplayMode.LIST)
           .placement(common_models.LegendPlacement.BOTTOM))
_TOOLTIP = common.VizTooltipOptions().mode(common_models.TooltipDisplayMode.MULTI).sort(
    common_models.SortOrder.DESCENDING)


def _series(title: str, targets: list[tuple[str, str]], unit: str,
            width: int = 8) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).datasource(PROMETHEUS).unit(unit)
             .height(8).span(width).legend(_LEGEND).tooltip(_TOOLTIP)
             .line_width(1).fill_opacity(10))
    for index, (expr, legend) in enumerate(targets):
        panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend)
                          .ref_id(chr(ord("A") + index)))
    return panel


def _row(board: dashboard.Dashboard, title: str,
         panels: dict[str, list[tuple[str, str]]]) -> None:
    board.with_row(dashboard.Row(title))
    for name, targets in panels.items():
        board.with_panel(_series(name, targets, UNITS[name]))


def _memory_panel(service: str, budget_bytes: int) -> timeseries.Panel:
    """A service's RSS per process, with its budget as a line and a red threshold."""
    panel = _series(f"RSS: {service}", [(rss_expr(service), "{{instance}}"),
                                        (f"vector({budget_bytes})", "budget")], "bytes")
    return (panel.thresholds(dashboard.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE)
                             .steps([models.Threshold(None, "green"),
                                     models.Threshold(budget_bytes, "red")]))
            .thresholds_style(common.GraphThresholdsStyleConfig()
                              .mode(common_models.GraphTresholdsStyleMode.DASHED))
            .axis_soft_min(0))


# Grafana units of the SQL columns that are not plain counts.
COLUMN_UNITS = {"oldest_wait_s": "s", "asa_s": "s", "in_state_s": "s", "last_beat_s": "s",
                "avg_wait_s": "s", "avg_talk_s": "s", "service_level": "percentunit"}


def _sql_table(title: str, query: Query, width: int = 24, height: int = 8) -> table.Panel:
    panel = (table.Panel().title(title).datasource(POSTGRES).height(height).span(width)
             .show_header(True).cell_height(common_models.TableCellHeight.SM)
             .with_target(Sql(query.sql, query.format).datasource(POSTGRES)))
    for column in query.columns:
        if column in COLUMN_UNITS:
            panel.override_by_name(column, [models.DynamicConfigValue("unit",
                                                                      COLUMN_UNITS[column])])
    return panel


def _sql_stat(title: str, query: Query, unit: str) -> stat.Panel:
    return (stat.Panel().title(title).datasource(POSTGRES).unit(unit).height(4).span(8)
            .reduce_options(common.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
            .graph_mode(common_models.BigValueGraphMode.NONE)
            .with_target(Sql(query.sql, query.format).datasource(POSTGRES)))


def _other_dashboards() -> dashboard.DashboardLink:
    """A menu of the other dialtone dashboards (by tag), keeping the time range."""
    return (dashboard.DashboardLink("dialtone").type(models.DashboardLinkType.DASHBOARDS)
            .tags(["dialtone"]).as_dropdown(True).keep_time(True))


def operations() -> dashboard.Dashboard:
    board = (dashboard.Dashboard("dialtone: operations").uid("dialtone-operations")
             .tags(["dialtone"]).refresh("30s").time("now-6h", "now")
             .tooltip(models.DashboardCursorSync.CROSSHAIR).link(_other_dashboards())
             .description("Signalling, media, API, infrastructure and memory of every "
                          "dialtone process (docs/observability.md)."))
    _row(board, "Signalling", SIGNALLING)
    _row(board, "Media", MEDIA)
    _row(board, "API", API)
    _row(board, "Infrastructure", INFRASTRUCTURE)
    board.with_panel(_sql_table("Heartbeats (service_heartbeats)", HEARTBEATS, height=8))
    board.with_row(dashboard.Row("Memory (RSS vs infra/budgets.toml)"))
    budgets = load_budgets()
    for service in SCRAPED:
        board.with_panel(_memory_panel(service, budgets[service].rss_bytes))
    return board


def _tenant_variable() -> dashboard.QueryVariable:
    return (dashboard.QueryVariable("tenant").label("Tenant").datasource(POSTGRES)
            .query(TENANT_VARIABLE.sql).multi(True)
            .current(models.VariableOption(selected=True, text=["default"], value=["default"]))
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD))


def supervisor() -> dashboard.Dashboard:
    board = (dashboard.Dashboard("dialtone: supervisor").uid("dialtone-supervisor")
             .tags(["dialtone"]).refresh("10s").time("now-24h", "now")
             .link(_other_dashboards())
             .description("Queues, agents and call volume from the projection tables "
                          "(docs/dashboard.md, Grafana). Queue figures over today and "
                          "the last 15 minutes, with the wallboard's formulas "
                          "(docs/metrics.md).")
             .with_variable(_tenant_variable()))
    board.with_row(dashboard.Row("Queues, live"))
    board.with_panel(_sql_stat("Calls waiting", CALLS_WAITING, "short"))
    board.with_panel(_sql_stat("Oldest wait", OLDEST_WAIT, "s"))
    board.with_panel(_sql_stat("Calls in progress", CALLS_IN_PROGRESS, "short"))
    board.with_panel(_sql_table("Queues: now, and today (since the tenant's midnight)", QUEUES))
    board.with_panel(_sql_table("Queues: the last 15 minutes", QUEUES_WINDOW))
    board.with_panel(_sql_table("Agents of each queue by state", QUEUE_AGENTS))
    board.with_row(dashboard.Row("Agents"))
    board.with_panel(
        bargauge.Panel().title("Agents by state").datasource(POSTGRES).height(8).span(8)
        .reduce_options(common.ReduceDataOptions().values(True).calcs(["lastNotNull"])
                        .fields("/^agents$/"))
        .with_target(Sql(AGENTS_BY_STATE.sql).datasource(POSTGRES)))
    board.with_panel(_sql_table("Agents", AGENTS, width=16))
    board.with_row(dashboard.Row("Call volume (CDR, dashboard time range)"))
    board.with_panel(
        timeseries.Panel().title("Finished calls per hour").datasource(POSTGRES).unit("short")
        .height(8).span(12).draw_style(common_models.GraphDrawStyle.BARS)
        .legend(_LEGEND).tooltip(_TOOLTIP).fill_opacity(80)
        .with_target(Sql(CALLS_PER_HOUR.sql, CALLS_PER_HOUR.format).datasource(POSTGRES)))
    board.with_panel(_sql_table("Calls by queue and outcome", CALLS_BY_QUEUE, width=12))
    return board


BUILDERS: dict[str, Any] = {"dialtone-operations": operations, "dialtone-supervisor": supervisor}


def to_json(builder: cogbuilder.Builder[models.Dashboard]) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, every panel (rows too) with its own id:
    the SDK leaves rows at 0, and Grafana's panel links (``viewPanel=ID``) need one."""
    board = builder.build()
    for number, panel in enumerate(board.panels or [], start=1):
        panel.id_val = number
    return dict(json.loads(json.dumps(board, cls=JSONEncoder)))


def render() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, by uid."""
    return {uid: to_json(build()) for uid, build in BUILDERS.items()}


def targets(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every query of a dashboard's JSON model: panel targets and variable queries."""
    for panel in model.get("panels", []):
        yield from panel.get("targets", [])
        for inner in panel.get("panels", []):
            yield from inner.get("targets", [])
    for variable in model.get("templating", {}).get("list", []):
        if isinstance(variable.get("query"), str):
            yield {"rawSql": variable["query"], "datasource": variable.get("datasource")}
