"""The dialtone Grafana dashboards, built with grafana-foundation-sdk's typed builders.

- **Operations** (Prometheus, the series of application/metrics.py and api/metrics.py):
  signalling, media, API, infrastructure and memory, the deployment design's list
  (issue 15, section 4), and the heartbeats table (PostgreSQL).
- **Supervisor** (PostgreSQL, the projection tables): queues live, agents by state,
  CDR volume (issue 10, section 4).

Every query is a module constant so tests can run them: each PromQL expression here
through ``promtool`` with its metric names checked against the registered series,
each SQL query (``dialtone.grafana.queries``) against the real schema after a real call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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

from dialtone.budgets import SCRAPED_SERVICES, load_budgets
from dialtone.grafana.queries import (
    AGENTS,
    AGENTS_BY_STATE,
    CALLS_BY_QUEUE,
    CALLS_IN_PROGRESS,
    CALLS_PER_HOUR,
    CALLS_WAITING,
    HEARTBEATS,
    OLDEST_WAIT,
    QUEUE_AGENTS,
    QUEUES,
    QUEUES_WINDOW,
    TENANT_VARIABLE,
    Query,
)
from dialtone.grafana.sql import POSTGRES_TYPE, Sql

# The datasource uids of infra/grafana/provisioning/datasources/datasources.yml; a
# Grafana the dashboards are pushed to needs datasources with these uids.
PROMETHEUS = models.DataSourceRef(type_val="prometheus", uid="prometheus")
POSTGRES = models.DataSourceRef(type_val=POSTGRES_TYPE, uid="dialtone-postgres")

RATE = "$__rate_interval"  # Grafana's: at least four scrape intervals


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
    "Targets up": [(f'up{{job=~"{"|".join(SCRAPED_SERVICES)}"}}', "{{job}} {{instance}}")],
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


# Every SQL query the dashboards use (a test runs each on a real call's projections).
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
    for service in SCRAPED_SERVICES:
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
