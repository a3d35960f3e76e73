"""The Grafana dashboards as code (dialtone/grafana): the committed files are what the
code generates, grafana-foundation-sdk's types read them back unchanged, every panel
names a provisioned datasource, and every SQL panel's query is one the SQL test runs."""

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

from dialtone.budgets import SCRAPED_SERVICES, load_budgets
from dialtone.grafana import dashboards, files, sql

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
        assert [t["expr"] for t in panel["targets"]] == [dashboards.rss_expr(service),
                                                         f"vector({budget})"]
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == budget


def test_the_operations_dashboard_has_the_deployment_designs_rows() -> None:
    rows = [p["title"] for p in committed()["dialtone-operations"]["panels"]
            if p["type"] == "row"]
    assert [r.split(" ")[0] for r in rows] == ["Signalling", "Media", "API", "Infrastructure",
                                               "Memory"]
