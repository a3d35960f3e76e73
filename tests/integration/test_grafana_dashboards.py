"""The Grafana dashboards' PromQL and `dialtone grafana push`.

- Every PromQL expression of the committed dashboards parses: ``promtool check rules``
  on a generated rule file that records each one (promtool parses PromQL offline; the
  Grafana variables are substituted as Grafana would), and every series it reads is
  one the dialtone processes export.
- ``dialtone grafana push`` talks to Grafana through grafana-client. The Grafana
  server is not packaged in Debian, so no real Grafana runs here: a local HTTP server
  records the requests grafana-client sends and answers as Grafana's HTTP API
  documents, which checks the payloads (folder, dashboards, credentials) and the
  command's idempotence, not Grafana itself. The dashboards' validity is checked by
  grafana-foundation-sdk's types (tests/unit/test_grafana_dashboards.py).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import PROCESS_COLLECTOR

from dialtone.commands import grafana
from dialtone.grafana import dashboards, files, reader
from tests.integration.test_alert_rules import exported_series, promtool
from tests.integration.test_compose_file import COMPOSE_FILE, run_compose

# What Grafana puts for its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}
# Series Prometheus makes itself for every target, not a process.
PROMETHEUS_OWN = {"up"}


def promql() -> list[tuple[str, str]]:
    """(dashboard / panel, expression) for every Prometheus query of the committed files."""
    found = []
    for path in sorted(files.DASHBOARDS_DIR.glob("*.json")):
        model = json.loads(path.read_text())
        for panel in model["panels"]:
            if panel.get("datasource", {}).get("type") == "prometheus":
                found += [(f"{model['uid']} / {panel['title']}", t["expr"])
                          for t in panel["targets"]]
    return found


def substituted(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
    return expr


def check_rules(tmp_path: Path, exprs: list[str]) -> Any:
    rules = {"groups": [{"name": "grafana-panels", "rules": [
        {"record": f"dialtone:grafana_panel_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    return promtool("check", "rules", str(path))


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    exprs = [substituted(e) for _where, e in promql()]
    assert len(exprs) >= 25
    checked = check_rules(tmp_path, exprs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    broken = substituted(promql()[1][1]).replace(")", "", 1)
    checked = check_rules(tmp_path, [broken])
    assert checked.returncode != 0


def exported() -> set[str]:
    process = {sample.name for family in PROCESS_COLLECTOR.collect()
               for sample in family.samples}
    assert "process_resident_memory_bytes" in process
    return exported_series() | process


def series_in(expr: str) -> set[str]:
    names = set(re.findall(r"\b((?:dialtone|process)_[a-z0-9_]+)", expr))
    return names | {n for n in PROMETHEUS_OWN if re.search(rf"\b{n}\{{", expr)}


def test_every_series_a_panel_reads_is_exported() -> None:
    known = exported() | PROMETHEUS_OWN
    for where, expr in promql():
        used = series_in(expr)
        assert used or expr.startswith("vector("), (where, expr)
        assert used - known == set(), (where, expr)


def test_the_series_check_catches_a_misspelt_name() -> None:
    assert series_in("sum(dialtone_b2bua_call_active)") - exported() == {
        "dialtone_b2bua_call_active"}


# --- dialtone grafana push ---------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class GrafanaApiRecorder:
    """The four answers of Grafana's HTTP API the push uses, recording each request."""

    requests: list[Recorded] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    datasources: set[str] = field(default_factory=lambda: {"prometheus", "dialtone-postgres"})
    fail_folder_lookup: bool = False

    def answer(self, request: Recorded) -> tuple[int, dict[str, Any]]:
        self.requests.append(request)
        if request.method == "GET" and request.path.startswith("/api/datasources/uid/"):
            uid = request.path.rsplit("/", 1)[1]
            return (200, {"uid": uid}) if uid in self.datasources else (
                404, {"message": "Data source not found"})
        if request.method == "GET" and request.path.startswith("/api/folders/"):
            return self.get_folder(request.path.rsplit("/", 1)[1])
        if request.method == "POST" and request.path == "/api/folders":
            return self.create_folder(request.body["uid"], request.body["title"])
        if request.method == "POST" and request.path == "/api/dashboards/db":
            return self.save_dashboard(request.body["dashboard"]["uid"])
        return 404, {"message": "not found"}

    def get_folder(self, uid: str) -> tuple[int, dict[str, Any]]:
        if self.fail_folder_lookup:
            return 500, {"message": "internal error"}
        if uid not in self.folders:
            return 404, {"message": "folder not found", "status": "not-found"}
        return 200, {"uid": uid, "title": self.folders[uid]}

    def create_folder(self, uid: str, title: str) -> tuple[int, dict[str, Any]]:
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[uid] = title
        return 200, {"uid": uid, "title": title}

    def save_dashboard(self, uid: str) -> tuple[int, dict[str, Any]]:
        self.versions[uid] = self.versions.get(uid, 0) + 1
        return 200, {"uid": uid, "version": self.versions[uid], "status": "success",
                     "url": f"/d/{uid}/x", "id": 1}


@pytest.fixture
def recorder() -> Iterator[tuple[str, GrafanaApiRecorder]]:
    state = GrafanaApiRecorder()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = state.answer(Recorded(self.command, self.path,
                                                    self.headers.get("Authorization"), body))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            del args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()
    thread.join(5)


DATASOURCE_LOOKUPS = [("GET", "/api/datasources/uid/prometheus"),
                      ("GET", "/api/datasources/uid/dialtone-postgres")]
NO_ENV = {"GRAFANA_URL": None, "GRAFANA_TOKEN": None, "GRAFANA_USER": None,
          "GRAFANA_PASSWORD": None}


def push(url: str, *args: str) -> Any:
    return CliRunner().invoke(grafana.command, ["push", "--url", url, *args], env=NO_ENV)


def committed_models() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(files.DASHBOARDS_DIR.glob("*.json"))]


def test_push_creates_the_folder_and_every_dashboard_then_changes_nothing_else(
    recorder: tuple[str, GrafanaApiRecorder],
) -> None:
    url, grafana_api = recorder
    first = push(url, "--token", "glsa_test")
    assert first.exit_code == 0, first.output
    calls = [(r.method, r.path) for r in grafana_api.requests]
    assert calls == [*DATASOURCE_LOOKUPS, ("GET", "/api/folders/dialtone"),
                     ("POST", "/api/folders"), ("POST", "/api/dashboards/db"),
                     ("POST", "/api/dashboards/db")]
    assert {r.authorization for r in grafana_api.requests} == {"Bearer glsa_test"}
    assert grafana_api.requests[3].body == {"title": "dialtone", "uid": "dialtone"}
    assert "warning" not in first.output
    saved = [r.body for r in grafana_api.requests[4:]]
    assert sorted((s["dashboard"] for s in saved), key=lambda d: d["uid"]) == committed_models()
    assert all(s["folderUid"] == "dialtone" and s["overwrite"] is True for s in saved)

    grafana_api.requests.clear()
    again = push(url, "--token", "glsa_test")
    assert again.exit_code == 0, again.output
    assert [(r.method, r.path) for r in grafana_api.requests] == [
        *DATASOURCE_LOOKUPS, ("GET", "/api/folders/dialtone"), ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db")]
    assert grafana_api.folders == {"dialtone": "dialtone"}
    assert set(grafana_api.versions.values()) == {2}
    assert "dialtone-supervisor\tversion 2" in again.output


def test_push_with_a_user_and_password_sends_basic_auth(
    recorder: tuple[str, GrafanaApiRecorder],
) -> None:
    url, grafana_api = recorder
    result = CliRunner().invoke(grafana.command, ["push", "--url", url, "--user", "ops"],
                                env={**NO_ENV, "GRAFANA_PASSWORD": "s3cret-pass"})
    assert result.exit_code == 0, result.output
    expected = "Basic " + base64.b64encode(b"ops:s3cret-pass").decode()
    assert {r.authorization for r in grafana_api.requests} == {expected}


def test_push_needs_one_credential(recorder: tuple[str, GrafanaApiRecorder]) -> None:
    url, grafana_api = recorder
    assert push(url).exit_code == 2
    assert push(url, "--token", "t", "--user", "u", "--password", "p").exit_code == 2
    assert grafana_api.requests == []


def test_push_stops_on_an_error_other_than_a_missing_folder(
    recorder: tuple[str, GrafanaApiRecorder],
) -> None:
    url, grafana_api = recorder
    grafana_api.fail_folder_lookup = True
    result = push(url, "--token", "t")
    assert result.exit_code != 0
    assert [(r.method, r.path) for r in grafana_api.requests] == [
        *DATASOURCE_LOOKUPS, ("GET", "/api/folders/dialtone")]


def test_push_warns_about_a_missing_datasource_and_saves_all_the_same(
    recorder: tuple[str, GrafanaApiRecorder],
) -> None:
    url, grafana_api = recorder
    grafana_api.datasources = {"prometheus"}
    result = push(url, "--token", "t")
    assert result.exit_code == 0, result.output
    assert "no datasource with uid dialtone-postgres (grafana-postgresql-datasource)" in (
        result.output)
    assert set(grafana_api.versions) == {"dialtone-operations", "dialtone-supervisor"}


def test_write_check_fails_while_a_dashboard_is_stale(tmp_path: Path) -> None:
    def write(*args: str) -> Any:
        return CliRunner().invoke(grafana.command, ["write", "--directory", str(tmp_path), *args])

    stale = write("--check")
    assert stale.exit_code == 1
    assert "dialtone-operations.json" in stale.output
    assert write().exit_code == 0
    assert write("--check").exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        f"{uid}.json" for uid in sorted(dashboards.BUILDERS)]


# --- The compose stack's Grafana ---------------------------------------------------------


def test_compose_grafana_provisions_the_generated_files_and_reads_the_projections() -> None:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json",
                      variables={"GRAFANA_DB_PASSWORD": "pg-from-env-123"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    grafana_service = services["grafana"]
    binds = {v["target"]: Path(v["source"]) for v in grafana_service["volumes"]
             if v["type"] == "bind"}
    provisioning = binds["/etc/grafana/provisioning"]
    providers = yaml.safe_load((provisioning / "dashboards" / "dialtone.yml").read_text())
    assert [binds[p["options"]["path"]] for p in providers["providers"]] == [files.DASHBOARDS_DIR]

    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    postgres = next(d for d in datasources["datasources"]
                    if d["uid"] == dashboards.POSTGRES.uid)
    assert postgres["type"] == dashboards.POSTGRES.type_val
    database = services["timescaledb"]["environment"]
    assert postgres["url"] == "timescaledb:5432"
    # The read-only role the grafana-reader service makes with the same password
    # (dialtone/grafana/reader.py), not the database owner.
    assert (postgres["user"], postgres["jsonData"]["database"]) == (
        reader.DEFAULT_ROLE, database["POSTGRES_DB"])
    assert services["grafana-reader"]["command"] == ["grafana", "reader"]
    assert services["grafana-reader"]["environment"][
        "DIALTONE_GRAFANA_DB_PASSWORD"] == "pg-from-env-123"
    # Grafana expands $VARIABLE in provisioning files from its own environment.
    variable = postgres["secureJsonData"]["password"].removeprefix("$")
    assert grafana_service["environment"][variable] == "pg-from-env-123"
    assert grafana_service["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert grafana_service["depends_on"]["grafana-reader"]["condition"] == \
        "service_completed_successfully"
