"""Every config file docker-compose.yml mounts, checked by its own tool where one exists.

- Every bind-mounted file is in the repository.
- Alertmanager: `amtool check-config`, `amtool config routes test` per severity the
  rules use, and the inhibitions run by the real Alertmanager (Debian's
  prometheus-alertmanager package, which also ships amtool).
- Grafana: the provisioning files against Grafana's documented fields (pydantic
  models below). grafana-client is an HTTP API client and has no provisioning
  types, and the Grafana server is not packaged in Debian.
- Loki and Tempo: parsed and their required keys checked; neither binary is
  packaged in Debian, so Loki and Tempo themselves do not validate them here.
- Prometheus (promtool, the scrape targets): test_stack_prometheus_config.py;
  Kamailio (`kamailio -c`): test_stack_kamailio_config.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dialtone.services.ports import free_port
from tests.integration.stack_support import (
    PROMETHEUS_RULES,
    bind_mounts,
    command_flag,
    mounted_file,
    run_tool,
    stack,
    tool_path,
)
from tests.integration.test_compose_file import COMPOSE_FILE, REPO, run_compose

__all__ = ["stack"]  # the fixture, shared


def test_every_bind_mounted_file_is_in_the_repository(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), (name, target, source)
            assert source.is_relative_to(REPO), (name, source)


# --- Alertmanager ---------------------------------------------------------------


def _alertmanager_config(stack: dict[str, Any]) -> Path:
    service = stack["services"]["alertmanager"]
    return mounted_file(service, command_flag(service, "config.file"))


def _route(config: Path, *labels: str) -> str:
    result = run_tool(tool_path("amtool"), "config", "routes", "test", f"--config.file={config}",
                  *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_alertmanager_config(stack: dict[str, Any]) -> None:
    checked = run_tool(tool_path("amtool"), "check-config", str(_alertmanager_config(stack)))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_amtool_rejects_a_route_to_an_unknown_receiver(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    document = yaml.safe_load(_alertmanager_config(stack).read_text())
    document["route"]["routes"][0]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(document))
    checked = run_tool(tool_path("amtool"), "check-config", str(broken))
    assert checked.returncode != 0
    assert "nobody" in checked.stdout + checked.stderr


def _rule_severities() -> set[str]:
    return {rule["labels"]["severity"] for path in PROMETHEUS_RULES
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def test_critical_alerts_page_and_warnings_make_tickets(stack: dict[str, Any]) -> None:
    config = _alertmanager_config(stack)
    assert _rule_severities() == {"critical", "warning"}
    assert _route(config, "alertname=DialtoneDatabaseDown", "severity=critical") == "oncall-page"
    assert _route(config, "alertname=DialtoneRelayLagHigh", "severity=warning") == "ops-ticket"
    # An alert without a known severity is not dropped.
    assert _route(config, "alertname=Other") == "ops-ticket"


def test_the_webhooks_are_documented_placeholders(stack: dict[str, Any]) -> None:
    document = yaml.safe_load(_alertmanager_config(stack).read_text())
    urls = [hook["url"] for receiver in document["receivers"]
            for hook in receiver.get("webhook_configs", [])]
    assert len(urls) == 2
    # .invalid never resolves (RFC 6761): nothing is sent anywhere until replaced.
    assert all(url.split("/")[2].endswith(".invalid") for url in urls)


def _post_alerts(base: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _get_alerts(base: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts", timeout=5) as response:
        return {a["labels"]["alertname"]: a for a in json.loads(response.read())}


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"alertmanager not ready:\n{log.read_text(errors='replace')[-3000:]}")


def test_the_real_alertmanager_inhibits_what_the_database_outage_explains(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    binary = tool_path("prometheus-alertmanager")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={_alertmanager_config(stack)}",
             f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address="], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base, process, log)
        now = datetime.now(UTC)
        window = {"startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
        _post_alerts(base, [
            {"labels": {"alertname": "DialtoneDatabaseDown", "severity": "critical"}, **window},
            {"labels": {"alertname": "DialtoneRelayLagHigh", "severity": "warning",
                        "application": "calls"}, **window},
            {"labels": {"alertname": "DialtoneRtpLossHigh", "severity": "warning"}, **window},
        ])
        deadline = time.monotonic() + 20
        while True:
            alerts = _get_alerts(base)
            if (len(alerts) == 3
                    and alerts["DialtoneRelayLagHigh"]["status"]["state"] == "suppressed"):
                break
            assert time.monotonic() < deadline, alerts
            time.sleep(0.2)
        assert alerts["DialtoneRelayLagHigh"]["status"]["inhibitedBy"]
        assert alerts["DialtoneRtpLossHigh"]["status"]["state"] == "active"
        assert alerts["DialtoneDatabaseDown"]["status"]["state"] == "active"
        receivers = {name: [r["name"] for r in a["receivers"]] for name, a in alerts.items()}
        assert receivers["DialtoneDatabaseDown"] == ["oncall-page"]
        assert receivers["DialtoneRtpLossHigh"] == ["ops-ticket"]
    finally:
        process.terminate()
        process.wait(10)


# --- Grafana --------------------------------------------------------------------
# Grafana's documented provisioning fields ("Provision Grafana", datasources and
# dashboard providers, apiVersion 1); an unknown key is an error here, where
# Grafana itself would ignore it silently.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Datasource(_Strict):
    name: str
    type: str
    uid: str
    access: Literal["proxy", "direct"] = "proxy"
    url: str
    orgId: int = 1  # noqa: N815 - Grafana's field name
    isDefault: bool = False  # noqa: N815
    editable: bool = False
    basicAuth: bool = False  # noqa: N815
    basicAuthUser: str | None = None  # noqa: N815
    user: str | None = None
    database: str | None = None
    withCredentials: bool = False  # noqa: N815
    version: int | None = None
    jsonData: dict[str, Any] = {}  # noqa: N815
    secureJsonData: dict[str, str] = {}  # noqa: N815


class DeleteDatasource(_Strict):
    name: str
    orgId: int = 1  # noqa: N815


class DatasourcesFile(_Strict):
    apiVersion: Literal[1]  # noqa: N815
    datasources: list[Datasource]
    deleteDatasources: list[DeleteDatasource] = []  # noqa: N815
    prune: bool = False


class ProviderOptions(_Strict):
    path: str
    foldersFromFilesStructure: bool = False  # noqa: N815


class DashboardProvider(_Strict):
    name: str
    orgId: int = 1  # noqa: N815
    folder: str = ""
    folderUid: str = ""  # noqa: N815
    type: Literal["file"]
    disableDeletion: bool = False  # noqa: N815
    updateIntervalSeconds: int = 10  # noqa: N815
    allowUiUpdates: bool = False  # noqa: N815
    options: ProviderOptions


class DashboardsFile(_Strict):
    apiVersion: Literal[1]  # noqa: N815
    providers: list[DashboardProvider]


def _provisioning(stack: dict[str, Any], kind: str) -> list[Path]:
    files = sorted(mounted_file(stack["services"]["grafana"],
                            f"/etc/grafana/provisioning/{kind}").glob("*.y*ml"))
    assert files, kind
    return files


def _datasources(stack: dict[str, Any]) -> list[Datasource]:
    return [ds for path in _provisioning(stack, "datasources")
            for ds in DatasourcesFile.model_validate(yaml.safe_load(path.read_text())).datasources]


def _port(url: str) -> tuple[str, int]:
    host, _, port = url.split("/")[2].rpartition(":")
    return host, int(port)


def test_grafana_datasources_follow_grafanas_schema_and_reach_compose_services(
    stack: dict[str, Any],
) -> None:
    by_type = {ds.type: ds for ds in _datasources(stack)}
    assert set(by_type) >= {"prometheus", "loki", "tempo", "alertmanager"}
    assert [ds.name for ds in by_type.values() if ds.isDefault] == ["Prometheus"]
    loki = yaml.safe_load((REPO / "infra" / "loki" / "loki.yml").read_text())
    tempo = yaml.safe_load((REPO / "infra" / "tempo" / "tempo.yml").read_text())
    expected = {"prometheus": ("prometheus", 9090), "alertmanager": ("alertmanager", 9093),
                "loki": ("loki", loki["server"]["http_listen_port"]),
                "tempo": ("tempo", tempo["server"]["http_listen_port"])}
    for kind, (service, port) in expected.items():
        assert _port(by_type[kind].url) == (service, port), kind
        assert service in stack["services"], kind
    uids = {ds.uid for ds in by_type.values()}
    tempo_links = by_type["tempo"].jsonData
    assert tempo_links["tracesToLogsV2"]["datasourceUid"] in uids
    assert tempo_links["serviceMap"]["datasourceUid"] in uids
    assert by_type["prometheus"].jsonData["alertmanagerUid"] in uids


def test_the_datasource_model_rejects_a_misspelt_field() -> None:
    with pytest.raises(ValidationError, match="isDefualt"):
        DatasourcesFile.model_validate({"apiVersion": 1, "datasources": [
            {"name": "P", "type": "prometheus", "uid": "p", "url": "http://p:9090",
             "isDefualt": True}]})


def test_grafana_loads_dashboards_from_a_mounted_directory(stack: dict[str, Any]) -> None:
    grafana = stack["services"]["grafana"]
    providers = [p for path in _provisioning(stack, "dashboards")
                 for p in DashboardsFile.model_validate(yaml.safe_load(path.read_text())).providers]
    assert providers
    for provider in providers:
        assert mounted_file(grafana, provider.options.path).is_dir(), provider.name
        for dashboard in mounted_file(grafana, provider.options.path).glob("*.json"):
            assert json.loads(dashboard.read_text())["title"], dashboard


def test_grafana_and_minio_secrets_come_from_the_environment(stack: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    for variable in ("GRAFANA_ADMIN_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        defaults = set(_defaults(text, variable))
        assert defaults, variable
        assert all(value.startswith("change-me-") for value in defaults), variable
    chosen = {"GRAFANA_ADMIN_PASSWORD": "grafana-from-env", "MINIO_ROOT_USER": "minio-user-env",
              "MINIO_ROOT_PASSWORD": "minio-password-from-env"}
    result = run_compose(COMPOSE_FILE, "config", "--format", "json", variables=chosen)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-from-env"
    for name in ("minio", "minio-init"):
        env = services[name]["environment"]
        assert env["MINIO_ROOT_USER"] == "minio-user-env", name
        assert env["MINIO_ROOT_PASSWORD"] == "minio-password-from-env", name


def _defaults(text: str, variable: str) -> list[str]:
    """The defaults of ${VARIABLE:-default} in the compose file."""
    return re.findall(r"\$\{" + variable + r":-([^}]*)\}", text)


# --- Loki, Tempo, MinIO -----------------------------------------------------------


def test_loki_config_has_what_a_single_process_loki_needs(stack: dict[str, Any]) -> None:
    service = stack["services"]["loki"]
    config = yaml.safe_load(mounted_file(service, command_flag(service, "config.file")).read_text())
    assert config["auth_enabled"] is False
    assert config["server"]["http_listen_port"] == 3100
    schema = config["schema_config"]["configs"][-1]
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")
    assert schema["object_store"] in config["common"]["storage"]
    data = {v["target"] for v in service["volumes"] if v["type"] == "volume"}
    assert config["common"]["path_prefix"] in data


def test_tempo_receives_otlp_from_every_dialtone_service(stack: dict[str, Any]) -> None:
    service = stack["services"]["tempo"]
    config = yaml.safe_load(mounted_file(service, command_flag(service, "config.file")).read_text())
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    storage = config["storage"]["trace"]
    assert storage["backend"] == "local"
    data = [v["target"] for v in service["volumes"] if v["type"] == "volume"]
    assert all(any(storage[key]["path"].startswith(d) for d in data) for key in ("wal", "local"))
    for name in ("api", "relay", "worker", "router", "b2bua"):
        env = stack["services"][name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318", name
        # Named by the command (dialtone-<name>, as on Kubernetes): set, this would override it.
        assert "OTEL_SERVICE_NAME" not in env, name


def test_minio_creates_the_recordings_bucket_once_healthy(stack: dict[str, Any]) -> None:
    init = stack["services"]["minio-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert init["environment"]["DIALTONE_RECORDINGS_BUCKET"] == "recordings"
    # `config` keeps the $$ escape: the container's shell, not compose, expands it.
    assert "mc mb --ignore-existing local/$$DIALTONE_RECORDINGS_BUCKET" in init["command"][0]
    assert stack["services"]["minio"]["healthcheck"]["test"]


def test_long_running_services_have_healthchecks_or_say_why_not(stack: dict[str, Any]) -> None:
    # Kamailio (no SIP client in the image), Loki and Tempo (no HTTP client in
    # theirs) are documented in docker-compose.yml; the dialtone workers are scraped.
    for name in ("timescaledb", "kafka", "redis", "api", "prometheus", "alertmanager",
                 "grafana", "minio"):
        assert stack["services"][name]["healthcheck"]["test"], name
