"""The Grafana dashboards as code (dialtone/grafana): the committed files are what the
code generates, grafana-foundation-sdk's types read them back unchanged, every panel
names a provisioned datasource, every SQL panel's query is one the SQL test runs, and
every dialtone metric family the processes export is on a panel or left out on purpose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus
from prometheus_client import Counter, Gauge, Histogram

from api.metrics import PlatformSnapshot
from application import metrics as catalogue
from dialtone.budgets import SCRAPED_SERVICES, load_budgets
from dialtone.grafana import dashboards, files, queries, sql

ROOT = Path(__file__).resolve().parents[2]
DATASOURCES = ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "datasources.yml"


@pytest.fixture(scope="module", autouse=True)
def _sdk_types() -> None:
    plugins.register_default_plugins()  # the SDK's panel options and query types
    sql.register()  # and ours, for the PostgreSQL datasource


def committed() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text())
            for path in sorted(files.DASHBOARDS_DIR.glob("*.json"))}


def sdk_round_trip(model: dict[str, Any]) -> tuple[models.Dashboard, dict[str, Any]]:
    typed = models.Dashboard.from_json(model)
    return typed, json.loads(json.dumps(typed, cls=JSONEncoder))


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_the_committed_dashboards_are_what_the_code_generates() -> None:
    assert files.stale() == [], "run `dialtone grafana write` and commit the result"
    assert set(committed()) == {"dialtone-operations", "dialtone-supervisor"}


def test_a_hand_edit_or_a_leftover_file_is_reported_stale(tmp_path: Path) -> None:
    written = files.write(tmp_path)
    assert files.stale(tmp_path) == []
    written[0].write_text(written[0].read_text().replace('"dialtone"', '"edited"', 1))
    (tmp_path / "old.json").write_text("{}")
    assert files.stale(tmp_path) == [written[0], tmp_path / "old.json"]
    files.write(tmp_path)
    assert files.stale(tmp_path) == []


@pytest.mark.parametrize("uid", ["dialtone-operations", "dialtone-supervisor"])
def test_the_sdk_types_read_each_dashboard_back_unchanged(uid: str) -> None:
    model = committed()[uid]
    typed, again = sdk_round_trip(model)
    assert again == model
    assert typed.uid == uid
    for panel in typed.panels or []:
        if isinstance(panel, models.Panel):
            assert panel.options is not None, panel.title
            for target in panel.targets or []:  # typed queries, not opaque bags
                assert not isinstance(target, UnknownDataquery), (panel.title, target)
                assert isinstance(target, prometheus.Dataquery | sql.SqlQuery), panel.title


def test_the_round_trip_drops_a_field_the_schema_does_not_know() -> None:
    model = committed()["dialtone-operations"]
    broken = {**model, "panels": [{**model["panels"][1], "gridPoss": {"h": 1}},
                                  *model["panels"][2:]]}
    _typed, again = sdk_round_trip(broken)
    assert again != broken


def test_every_panel_has_its_own_id() -> None:
    for model in committed().values():
        ids = [p["id"] for p in model["panels"]]
        assert len(set(ids)) == len(ids), model["uid"]
        assert 0 not in ids, model["uid"]


def test_every_panel_reads_a_provisioned_datasource() -> None:
    provisioned = {(d["type"], d["uid"]) for d in
                   yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    for model in committed().values():
        for panel in panels(model):
            source = (panel["datasource"]["type"], panel["datasource"]["uid"])
            assert source in provisioned, (model["uid"], panel["title"])
            for target in panel["targets"]:
                if "datasource" in target:
                    assert target["datasource"] == panel["datasource"], panel["title"]


def test_every_sql_query_of_the_dashboards_is_one_the_sql_test_runs() -> None:
    declared = {q.sql for q in dashboards.SQL_QUERIES}
    used = {t["rawSql"] for model in committed().values()
            for t in dashboards.targets(model) if "rawSql" in t}
    assert used == declared
    formats = {t["rawSql"]: t["format"] for model in committed().values()
               for t in dashboards.targets(model) if "format" in t}
    for query in dashboards.SQL_QUERIES:
        assert formats.get(query.sql, "table") == query.format
        if query.format == "time_series":
            assert query.columns[0] == "time"  # Grafana's time column of a series


def test_sql_column_overrides_name_columns_their_query_returns() -> None:
    columns = {q.sql: q.columns for q in dashboards.SQL_QUERIES}
    overridden = 0
    for model in committed().values():
        for panel in panels(model):
            sql_targets = [t["rawSql"] for t in panel["targets"] if "rawSql" in t]
            for override in panel["fieldConfig"]["overrides"]:
                assert override["matcher"]["id"] == "byName"
                assert any(override["matcher"]["options"] in columns[s] for s in sql_targets)
                overridden += 1
    assert overridden >= 5


def test_no_sql_uses_timescaledb_only_functions() -> None:
    # The same queries must run on the plain PostgreSQL path (where the SQL test runs).
    timescale_only = ("time_bucket", "first(", "last(", "histogram(", "locf(", "interpolate(",
                      "timescaledb_information", "approx_percentile")
    for query in dashboards.SQL_QUERIES:
        assert not [f for f in timescale_only if f in query.sql.lower()], query.sql


def test_targets_up_lists_every_scraped_service() -> None:
    [targets_up] = [p for p in panels(committed()["dialtone-operations"])
                    if p["title"] == "Targets up"]
    [expr] = [t["expr"] for t in targets_up["targets"]]
    assert set(re.findall(r'job=~"([^"]+)"', expr)[0].split("|")) == set(SCRAPED_SERVICES)


def test_memory_panels_show_each_scraped_service_against_its_budget() -> None:
    budgets = load_budgets()
    memory = {p["title"]: p for p in panels(committed()["dialtone-operations"])
              if p["title"].startswith("RSS: ")}
    assert set(memory) == {f"RSS: {s}" for s in SCRAPED_SERVICES}
    for service in SCRAPED_SERVICES:
        panel = memory[f"RSS: {service}"]
        budget = budgets[service].rss_bytes
        assert [t["expr"] for t in panel["targets"]] == [queries.rss_expr(service),
                                                         f"vector({budget})"]
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == budget


def test_the_operations_dashboard_has_the_deployment_designs_rows() -> None:
    rows = [p["title"] for p in committed()["dialtone-operations"]["panels"]
            if p["type"] == "row"]
    # The design's rows, each process's own series before Memory, which ends the board.
    assert [r.split(" ")[0] for r in rows] == [
        "Signalling", "Media", "API", "Infrastructure", "Projection", "B2BUA", "Recordings",
        "Registrations", "Webhooks", "Call", "Memory"]


# --- Every metric family on a panel ------------------------------------------------------

# Families deliberately on no panel, each with why. A family here that a panel charts,
# or that the processes no longer export, fails the test below: keep the list short.
NOT_CHARTED = {
    # Store positions only ever rise: their difference from the store's head is what
    # matters, and the relay and projection lag panels chart exactly that.
    "dialtone_relay_position",
    "dialtone_projection_position",
    # The heartbeat series serve the DialtoneServiceNotRunning alert (rules/heartbeats.yml);
    # the Operations dashboard's heartbeats table reads the same rows from PostgreSQL.
    "dialtone_heartbeat_age_seconds",
    "dialtone_heartbeat_stale_after_seconds",
    "dialtone_service_required",
}
SAMPLE_SUFFIXES = {"counter": ("_total",), "gauge": ("",),
                   "histogram": ("_bucket", "_sum", "_count")}


def exported_families() -> dict[str, str]:
    """Every dialtone metric family the processes export, with its type: the catalogue
    (application/metrics.py, where every series is defined, the registrations and webhook
    ones too although they are registered only where they run) and the platform
    snapshot the API collects at each scrape (api/metrics.py: database up, projection
    lag, the queues' tallies)."""
    found = {value._name: value._type for value in vars(catalogue).values()
             if isinstance(value, Counter | Gauge | Histogram)}
    found |= {family.name: family.type for family in PlatformSnapshot(scraped=True).collect()}
    return found


def promql(models_by_uid: dict[str, dict[str, Any]]) -> list[str]:
    return [t["expr"] for model in models_by_uid.values() for t in dashboards.targets(model)
            if "expr" in t]


def uncharted(exprs: list[str]) -> set[str]:
    """Exported families no expression reads (by one of their sample names)."""
    read = {name for expr in exprs for name in re.findall(r"\bdialtone_[a-z0-9_]+\b", expr)}
    return {family for family, kind in exported_families().items()
            if not {family + suffix for suffix in SAMPLE_SUFFIXES[kind]} & read}


def test_the_family_list_comes_from_the_catalogue_and_the_api_snapshot() -> None:
    families = exported_families()
    assert len(families) >= 50
    assert {  # the families of the processes the audit found without a panel
        "dialtone_webhook_attempts", "dialtone_webhook_attempt_duration_seconds",
        "dialtone_webhook_deliveries_queued", "dialtone_webhook_round_fill_ratio",
        "dialtone_webhook_subscriptions_disabled", "dialtone_recording_uploads",
        "dialtone_recordings_pending", "dialtone_registrations_observation_errors",
        "dialtone_registrations_last_success_timestamp_seconds",
        "dialtone_b2bua_pool_restarts", "dialtone_b2bua_pool_children_up",
        "dialtone_loop_steps", "dialtone_loop_failures", "dialtone_database_up",
        "dialtone_queue_calls_offered"} <= set(families)
    assert set(SAMPLE_SUFFIXES) == set(families.values())


def test_every_exported_metric_family_is_on_a_panel_or_left_out_on_purpose() -> None:
    missing = uncharted(promql(committed()))
    assert missing - NOT_CHARTED == set(), "chart these, or add them to NOT_CHARTED with why"
    assert missing >= NOT_CHARTED, "charted or no longer exported: drop from NOT_CHARTED"


def test_the_family_check_catches_a_dropped_row() -> None:
    without_webhooks = {uid: {**model, "panels": [p for p in model["panels"]
                                                 if p["title"] not in queries.WEBHOOKS]}
                        for uid, model in committed().items()}
    assert uncharted(promql(without_webhooks)) - NOT_CHARTED == {
        "dialtone_webhook_attempts", "dialtone_webhook_attempt_duration_seconds",
        "dialtone_webhook_deliveries_queued", "dialtone_webhook_round_fill_ratio",
        "dialtone_webhook_subscriptions_disabled"}


def test_alert_levels_are_drawn_on_the_panels_of_their_series() -> None:
    by_title = {p["title"]: p for p in panels(committed()["dialtone-operations"])}
    assert set(queries.THRESHOLDS) <= set(by_title)
    for title, (level, low_is_bad) in queries.THRESHOLDS.items():
        steps = by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[-1] == {"value": level, "color": "green" if low_is_bad else "red"}
