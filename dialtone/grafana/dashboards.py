"""The dialtone Grafana dashboards, built with grafana-foundation-sdk's typed builders.

- **Operations** (Prometheus, the series of application/metrics.py and api/metrics.py):
  signalling, media, API, infrastructure and memory, the deployment design's list
  (issue 15, section 4), and the heartbeats table (PostgreSQL); a row for the series of
  each other process (projection workers and loops, B2BUA pool, recordings,
  registrations, webhooks) and the API's queue series, with the levels their alerts
  (infra/prometheus/rules) fire at as thresholds. A test fails while a family of the
  catalogue is on no panel and not in its list of families left out on purpose.
- **Supervisor** (PostgreSQL, the projection tables): queues live, agents by state,
  CDR volume (issue 10, section 4).

Every query is a module constant of ``dialtone.grafana.queries`` so tests can run them:
each PromQL expression through ``promtool`` with its metric names checked against the
registered series, each SQL query against the real schema after a real call.
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
    API,
    B2BUA_POOL,
    CALL_CENTRE,
    CALLS_BY_QUEUE,
    CALLS_IN_PROGRESS,
    CALLS_PER_HOUR,
    CALLS_WAITING,
    HEARTBEATS,
    INFRASTRUCTURE,
    MEDIA,
    OLDEST_WAIT,
    QUEUE_AGENTS,
    QUEUES,
    QUEUES_WINDOW,
    RECORDINGS,
    REGISTRATIONS,
    SIGNALLING,
    TENANT_VARIABLE,
    THRESHOLDS,
    UNITS,
    WEBHOOKS,
    WORKERS_AND_LOOPS,
    Query,
    rss_expr,
)
from dialtone.grafana.sql import POSTGRES_TYPE, Sql

# The datasource uids of infra/grafana/provisioning/datasources/datasources.yml; a
# Grafana the dashboards are pushed to needs datasources with these uids.
PROMETHEUS = models.DataSourceRef(type_val="prometheus", uid="prometheus")
POSTGRES = models.DataSourceRef(type_val=POSTGRES_TYPE, uid="dialtone-postgres")

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


def _threshold(panel: timeseries.Panel, level: float, low_is_bad: bool = False) -> None:
    """A dashed threshold line at ``level``, red on its bad side."""
    low, high = ("red", "green") if low_is_bad else ("green", "red")
    panel.thresholds(dashboard.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE)
                     .steps([models.Threshold(None, low), models.Threshold(level, high)]))
    panel.thresholds_style(common.GraphThresholdsStyleConfig()
                           .mode(common_models.GraphTresholdsStyleMode.DASHED))


def _row(board: dashboard.Dashboard, title: str,
         panels: dict[str, list[tuple[str, str]]], width: int = 8) -> None:
    board.with_row(dashboard.Row(title))
    for name, targets in panels.items():
        panel = _series(name, targets, UNITS[name], width)
        if name in THRESHOLDS:
            _threshold(panel, *THRESHOLDS[name])
        board.with_panel(panel)


def _memory_panel(service: str, budget_bytes: int) -> timeseries.Panel:
    """A service's RSS per process, with its budget as a line and a red threshold."""
    panel = _series(f"RSS: {service}", [(rss_expr(service), "{{instance}}"),
                                        (f"vector({budget_bytes})", "budget")], "bytes")
    _threshold(panel, budget_bytes)
    return panel.axis_soft_min(0)


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
             .description("Signalling, media, API, infrastructure, each process's own "
                          "series (workers and loops, B2BUA pool, recordings, "
                          "registrations, webhooks), queues and memory of every dialtone "
                          "process (docs/observability.md); dashed lines: alert levels."))
    _row(board, "Signalling", SIGNALLING)
    _row(board, "Media", MEDIA)
    _row(board, "API", API)
    _row(board, "Infrastructure", INFRASTRUCTURE)
    board.with_panel(_sql_table("Heartbeats (service_heartbeats)", HEARTBEATS, height=8))
    _row(board, "Projection workers and loops", WORKERS_AND_LOOPS, width=6)
    _row(board, "B2BUA pool (the parent of `dialtone b2bua --workers N`)", B2BUA_POOL,
         width=12)
    _row(board, "Recordings (uploader)", RECORDINGS)
    _row(board, "Registrations (registrar observer)", REGISTRATIONS, width=6)
    _row(board, "Webhooks (followers and dispatcher)", WEBHOOKS)
    _row(board, "Call centre (queue_live, from the API)", CALL_CENTRE)
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
