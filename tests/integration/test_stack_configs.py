"""Every config file docker-compose.yml mounts, checked by its own tool where one exists.

- Prometheus: `promtool check config` on prometheus.yml laid out as the container
  sees it (the rules found through the mounts); every scrape target is a compose
  service that serves that port.
- Alertmanager: `amtool check-config`, `amtool config routes test` per severity the
  rules use, and the inhibitions run by the real Alertmanager (Debian's
  prometheus-alertmanager package, which also ships amtool).
- Kamailio: the compose entrypoint's rendered config passes `kamailio -c`.
- Grafana: the provisioning files against Grafana's documented fields (pydantic
  models below). grafana-client is an HTTP API client and has no provisioning
  types, and the Grafana server is not packaged in Debian.
- Loki and Tempo: parsed and their required keys checked; neither binary is
  packaged in Debian, so Loki and Tempo themselves do not validate them here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dialtone.budgets import load_budgets
from dialtone.services.ports import free_port
from tests.fixtures.certificates import make_server_certificate
from tests.integration.test_compose_file import COMPOSE_FILE, REPO, _compose

PROMETHEUS_RULES = sorted((REPO / "infra" / "prometheus" / "rules").glob("*.yml"))
METRICS_PORT = "9464"


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                   else None)
    assert found, f"{name} missing: ./dev test installs it (ensure_debian_packages)"
    return found


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = _compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service.get("volumes", [])
            if v["type"] == "bind"}


def _mounted(service: dict[str, Any], container_path: str) -> Path:
    """The host file a container path of the service resolves to through its binds."""
    for target, source in sorted(_binds(service).items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted")


def _lay_out(service: dict[str, Any], root: Path) -> None:
    """Copy a service's bind mounts under root at their container paths."""
    for target, source in _binds(service).items():
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy(source, destination)


def _flag(service: dict[str, Any], name: str) -> str:
    """The value of --name=value (or -name=value) in a service's command."""
    for arg in service["command"]:
        key, _, value = arg.lstrip("-").partition("=")
        if key == name:
            return str(value)
    raise AssertionError(f"no --{name} in {service['command']}")


def test_every_bind_mounted_file_is_in_the_repository(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        for target, source in _binds(service).items():
            assert source.exists(), (name, target, source)
            assert source.is_relative_to(REPO), (name, source)


# --- Prometheus -----------------------------------------------------------------


def test_promtool_accepts_the_config_and_rules_as_the_container_sees_them(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    prometheus = stack["services"]["prometheus"]
    _lay_out(prometheus, tmp_path)
    config = tmp_path / _flag(prometheus, "config.file").lstrip("/")
    checked = _run(_tool("promtool"), "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Every rule file of the repository is loaded through the mounts, none is left out.
    for rule in PROMETHEUS_RULES:
        assert f"Checking {config.parent / 'rules' / rule.name}" in checked.stdout, checked.stdout
        assert "SUCCESS" in checked.stdout


def test_promtool_fails_when_the_rules_are_not_mounted(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    prometheus = dict(stack["services"]["prometheus"])
    prometheus["volumes"] = [v for v in prometheus["volumes"]
                             if not v["target"].endswith("/rules")]
    _lay_out(prometheus, tmp_path)
    (tmp_path / "etc" / "prometheus" / "rules").mkdir()
    (tmp_path / "etc" / "prometheus" / "rules" / "broken.yml").write_text(
        "groups: [{name: x, rules: [{alert: A, expr: 'up =='}]}]\n")
    config = tmp_path / _flag(prometheus, "config.file").lstrip("/")
    checked = _run(_tool("promtool"), "check", "config", str(config))
    assert checked.returncode != 0


def _scrape_targets(stack: dict[str, Any]) -> dict[str, list[str]]:
    config_path = _mounted(stack["services"]["prometheus"],
                           _flag(stack["services"]["prometheus"], "config.file"))
    config = yaml.safe_load(config_path.read_text())
    return {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
            for job in config["scrape_configs"]}


def test_every_scrape_target_is_a_compose_service_serving_that_port(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    targets = _scrape_targets(stack)
    assert set(targets) >= {"api", "relay", "worker", "router", "b2bua"}
    for job, addresses in targets.items():
        for address in addresses:
            host, _, port = address.rpartition(":")
            assert host in services, (job, address)
            env = services[host].get("environment", {})
            if host == "api":  # /metrics on its HTTP port
                assert any(p["target"] == int(port) for p in services["api"]["ports"]), address
                continue
            if host == "b2bua" and port != METRICS_PORT:  # a worker of the pool, below
                continue
            assert env.get("DIALTONE_METRICS_PORT") == port, (job, address)
            assert env.get("DIALTONE_METRICS_HOST") == "0.0.0.0", (job, address)
    # The pool's parent, then worker i on the pool's port + 1 + i, for each worker.
    command = services["b2bua"]["command"]
    workers = int(command[command.index("--workers") + 1])
    assert targets["b2bua"] == [f"b2bua:{METRICS_PORT}"] + [
        f"b2bua:{int(METRICS_PORT) + 1 + i}" for i in range(workers)]


# Dialtone services that run once and exit: nothing stays up to scrape.
RUN_ONCE = {"kafka-init", "migrate"}


def test_every_long_running_dialtone_service_is_a_scrape_job_named_after_its_budget(
    stack: dict[str, Any],
) -> None:
    """A dialtone process left out of prometheus.yml would be down without an alert
    and over its memory budget unseen (the RSS rules select on the job)."""
    services = stack["services"]
    dialtone = {name for name, service in services.items()
                if str(service.get("image", "")).startswith("dialtone") and name not in RUN_ONCE}
    assert dialtone >= {"recordings", "registrations"}
    assert set(_scrape_targets(stack)) >= dialtone
    assert set(_scrape_targets(stack)) <= set(load_budgets())


def test_prometheus_sends_alerts_to_the_compose_alertmanager(stack: dict[str, Any]) -> None:
    prometheus = stack["services"]["prometheus"]
    config = yaml.safe_load(_mounted(prometheus, _flag(prometheus, "config.file")).read_text())
    targets = [t for am in config["alerting"]["alertmanagers"]
               for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    assert any(p["target"] == 9093 for p in stack["services"]["alertmanager"]["ports"])


# --- Alertmanager ---------------------------------------------------------------


def _alertmanager_config(stack: dict[str, Any]) -> Path:
    service = stack["services"]["alertmanager"]
    return _mounted(service, _flag(service, "config.file"))


def _route(config: Path, *labels: str) -> str:
    result = _run(_tool("amtool"), "config", "routes", "test", f"--config.file={config}",
                  *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_alertmanager_config(stack: dict[str, Any]) -> None:
    checked = _run(_tool("amtool"), "check-config", str(_alertmanager_config(stack)))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_amtool_rejects_a_route_to_an_unknown_receiver(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    document = yaml.safe_load(_alertmanager_config(stack).read_text())
    document["route"]["routes"][0]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(document))
    checked = _run(_tool("amtool"), "check-config", str(broken))
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
    binary = _tool("prometheus-alertmanager")
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


# --- Kamailio -------------------------------------------------------------------


def _render_kamailio(stack: dict[str, Any], out: Path, **overrides: str) -> Path:
    """Run the kamailio service's entrypoint as the container does, stopping before
    Kamailio starts, on a loopback listen address."""
    service = stack["services"]["kamailio"]
    script = _mounted(service, service["entrypoint"][-1])
    env = {**service["environment"], "PATH": "/usr/bin:/bin",
           "SRC_DIR": str(_mounted(service, service["environment"]["SRC_DIR"])),
           "OUT_DIR": str(out), "LISTEN_IP": "127.0.0.1", "CHECK_ONLY": "1", **overrides}
    subprocess.run(["sh", str(script)], env=env, check=True, timeout=30)
    return out / "kamailio.cfg"


def test_the_compose_kamailio_config_passes_kamailio_check(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    config = _render_kamailio(stack, tmp_path)
    # One line per worker of the b2bua pool, on every port it listens on.
    command = stack["services"]["b2bua"]["command"]
    workers = int(command[command.index("--workers") + 1])
    assert stack["services"]["kamailio"]["environment"]["B2BUA_WORKERS"] == str(workers)
    assert workers > 1
    assert (tmp_path / "dispatcher.list").read_text().splitlines() == [
        f"1 sip:b2bua:{5070 + i} 0 0 duid=b2bua:{5070 + i};maxload=2" for i in range(workers)]
    # Each worker's SIP port and RTP block (10000 + (port % 500) * 40, 40 ports) is published.
    published = {port for mapping in stack["services"]["b2bua"]["ports"]
                 for port in range(int(mapping["published"].split("-")[0]),
                                   int(mapping["published"].split("-")[-1]) + 1)}
    for i in range(workers):
        rtp = 10000 + (5070 + i) % 500 * 40
        assert {5070 + i, *range(rtp, rtp + 40)} <= published, i
    text = config.read_text()
    assert "LISTEN_ADDR" not in text
    assert "DISPATCHER_LIST" not in text
    # The workers' edge name (DIALTONE_SIP_EDGE's host) is this proxy's alias.
    edge_host = stack["services"]["b2bua"]["environment"]["DIALTONE_SIP_EDGE"].split(":")[0]
    assert f'alias="{edge_host}"' in text.splitlines()
    check = _run(_tool("kamailio"), "-c", "-f", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    # The dispatcher targets the compose B2BUA on the SIP port it listens on.
    assert stack["services"]["b2bua"]["command"][-2:] == ["--port", "5070"]
    # No certificate in the mounted directory: UDP only, tls.cfg left unfilled.
    assert "#!define WITH_TLS" not in text
    assert "listen=tls:TLS_ADDRESS" in (tmp_path / "tls.cfg").read_text()


def test_the_compose_kamailio_serves_tls_with_a_mounted_certificate(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    service = stack["services"]["kamailio"]
    env = service["environment"]
    # The paths the entrypoint reads are in the mounted certificate directory
    # (infra/kamailio/tls/ by default), and the TLS port is published.
    for name in ("TLS_CERTIFICATE", "TLS_PRIVATE_KEY"):
        assert _mounted(service, env[name]).parent == REPO / "infra" / "kamailio" / "tls"
    assert {(p["target"], p["protocol"]) for p in service["ports"]} >= {
        (5060, "udp"), (5061, "tcp")}
    files = make_server_certificate(tmp_path / "certificate")
    out = tmp_path / "out"
    out.mkdir()
    config = _render_kamailio(stack, out, TLS_CERTIFICATE=str(files.certificate),
                              TLS_PRIVATE_KEY=str(files.private_key))
    assert config.read_text().splitlines()[1] == "#!define WITH_TLS"
    tls = (out / "tls.cfg").read_text()
    assert "listen=tls:127.0.0.1:5061" in tls
    assert f'modparam("tls", "certificate", "{files.certificate}")' in tls
    assert f'modparam("tls", "private_key", "{files.private_key}")' in tls
    check = _run(_tool("kamailio"), "-c", "-f", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tls: 127.0.0.1 [127.0.0.1]:5061" in check.stdout + check.stderr


def test_kamailio_check_rejects_a_broken_config(stack: dict[str, Any], tmp_path: Path) -> None:
    config = _render_kamailio(stack, tmp_path)
    config.write_text(config.read_text().replace('loadmodule "dispatcher.so"\n', ""))
    check = _run(_tool("kamailio"), "-c", "-f", str(config))
    assert check.returncode != 0


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
    files = sorted(_mounted(stack["services"]["grafana"],
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
        assert _mounted(grafana, provider.options.path).is_dir(), provider.name
        for dashboard in _mounted(grafana, provider.options.path).glob("*.json"):
            assert json.loads(dashboard.read_text())["title"], dashboard


def test_grafana_and_minio_secrets_come_from_the_environment(stack: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text()
    for variable in ("GRAFANA_ADMIN_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        defaults = set(_defaults(text, variable))
        assert defaults, variable
        assert all(value.startswith("change-me-") for value in defaults), variable
    chosen = {"GRAFANA_ADMIN_PASSWORD": "grafana-from-env", "MINIO_ROOT_USER": "minio-user-env",
              "MINIO_ROOT_PASSWORD": "minio-password-from-env"}
    result = _compose(COMPOSE_FILE, "config", "--format", "json", variables=chosen)
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
    config = yaml.safe_load(_mounted(service, _flag(service, "config.file")).read_text())
    assert config["auth_enabled"] is False
    assert config["server"]["http_listen_port"] == 3100
    schema = config["schema_config"]["configs"][-1]
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")
    assert schema["object_store"] in config["common"]["storage"]
    data = {v["target"] for v in service["volumes"] if v["type"] == "volume"}
    assert config["common"]["path_prefix"] in data


def test_tempo_receives_otlp_from_every_dialtone_service(stack: dict[str, Any]) -> None:
    service = stack["services"]["tempo"]
    config = yaml.safe_load(_mounted(service, _flag(service, "config.file")).read_text())
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
        assert env["OTEL_SERVICE_NAME"] == name


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
