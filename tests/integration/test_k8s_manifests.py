"""The Kubernetes manifests (deploy/k8s): rendered with the real kustomize and
validated with kubeconform -strict against the Kubernetes JSON schemas.

The tools are Go modules that ``./dev test`` installs with ``go install`` into
.cache/go/bin; the schemas come from the PyPI package kubernetes-validate, which
``./dev test`` installs into .cache/k8s (docs/deployment.md, "Validation").
Beyond the schemas, the checks here hold the design's promises: requests and
limits equal infra/budgets.toml, each overlay fills in its own network addresses,
production spreads over zones, and every metrics port is one that Prometheus'
Kubernetes scrape config finds, and that config passes promtool. Pod Security,
the scaling design and the recordings sidecar: test_k8s_pod_design.py; Kamailio
and the registrar: test_k8s_kamailio.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from dialtone.budgets import load_budgets
from dialtone.commands.b2bua_pool import child_metrics_port
from tests.integration.k8s_support import (
    GOBIN,
    K8S,
    ROOT,
    TARGETS,
    WORKLOAD_KINDS,
    by_kind_name,
    pod_specs,
    required_file,
    yaml_docs,
)

KUBECONFORM = GOBIN / "kubeconform-v0.8.0"
SCHEMA_PACKAGE = (ROOT / ".cache" / "k8s" / "kubernetes-validate-1.37.0" / "kubernetes_validate"
                  / "kubernetes-json-schema")
# Oldest and newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
DOCUMENTATION_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")  # RFC 5737


# A $ref into kubernetes-validate's shared definitions file, and the name it points at.
_DEFINITION_REF = re.compile(r'"\$ref": "(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """kubeconform's local layout (<dir>/v<version>-standalone-strict/<kind>-<group>-<v>.json)
    made from kubernetes-validate's "local" schemas. Those $ref
    ``/api/_definitions.json`` (every definition of the API, 1.8 MB) under an https
    $id that kubeconform would fetch; each schema here carries instead the
    definitions it reaches, under its own ``$defs``, so it resolves offline and
    kubeconform compiles what the kind needs rather than the whole API for every
    kind (2.1 s -> 0.2 s of CPU for the base's 28 objects; the same rules)."""
    out = tmp_path_factory.mktemp("k8s-schemas")
    for version in KUBERNETES_VERSIONS:
        source = required_file(SCHEMA_PACKAGE / f"v{version}-local-strict")
        target = out / f"v{version}-standalone-strict"
        target.mkdir()
        definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
        reaches = {name: set(_DEFINITION_REF.findall(json.dumps(body)))
                   for name, body in definitions.items()}
        for schema in source.glob("*.json"):
            if schema.name == "_definitions.json":
                continue
            text = schema.read_text()
            needed: set[str] = set()
            todo = set(_DEFINITION_REF.findall(text))
            while todo:
                name = todo.pop()
                if name not in needed:
                    needed.add(name)
                    todo |= reaches[name]
            document = json.loads(text.replace('"$ref": "/api/_definitions.json#', '"$ref": "#'))
            document.pop("$id", None)
            document["$defs"] = {name: definitions[name] for name in needed}
            (target / schema.name).write_text(json.dumps(document))
    yield out
    shutil.rmtree(out, ignore_errors=True)


def _kubeconform(schemas: Path, version: str, manifest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(required_file(KUBECONFORM)), "-strict", "-summary", "-kubernetes-version", version,
         "-schema-location", str(schemas), str(manifest)],
        capture_output=True, text=True, timeout=300, check=False)


def test_generated_files_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.stale(generate.render()) == [], \
        "run .venv/bin/python deploy/k8s/generate.py and commit deploy/k8s/base/generated"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_manifests_are_valid_kubernetes_objects(rendered: dict[str, str], schemas: Path,
                                                tmp_path: Path, target: str,
                                                version: str) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(rendered[target])
    result = _kubeconform(schemas, version, manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(yaml_docs(rendered[target]))
    # Every object was checked: none skipped for want of a schema.
    assert (f"{count} resources found in 1 file - Valid: {count}, Invalid: 0, Errors: 0, "
            "Skipped: 0") in result.stdout, result.stdout


@pytest.mark.parametrize(("mutation", "expected"), [
    (lambda c: c.update(imagePullPolicyy="Always"), "imagePullPolicyy"),
    (lambda c: c["resources"]["requests"].update(memory=["256Mi"]), "memory"),
    (lambda c: c.update(ports=[{"containerPort": "eighty"}]), "containerPort"),
], ids=["unknown-field", "wrong-type-quantity", "wrong-type-port"])
def test_an_invalid_manifest_is_rejected(rendered: dict[str, str], schemas: Path,
                                         tmp_path: Path, mutation: Any, expected: str) -> None:
    docs = yaml_docs(rendered["overlays/production"])
    api = by_kind_name(docs)[("Deployment", "api")]
    mutation(api["spec"]["template"]["spec"]["containers"][0])
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    result = _kubeconform(schemas, KUBERNETES_VERSIONS[-1], manifest)
    assert result.returncode == 1, result.stdout
    assert "Deployment api is invalid" in result.stdout, result.stdout
    assert expected in result.stdout, result.stdout
    assert "Invalid: 1, Errors: 0" in result.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_requests_and_limits_come_from_the_budgets(rendered: dict[str, str],
                                                   target: str) -> None:
    budgets = load_budgets()
    seen = set()
    for name, pod in pod_specs(yaml_docs(rendered[target])):
        service = name.split("/")[1]
        budget = budgets[service]
        seen.add(service)
        for container in pod["containers"] + pod.get("initContainers", []):
            # A sidecar running another dialtone process (b2bua's recordings) has its own.
            own = budgets.get(container["name"], budget)
            seen.add(own.service)
            assert container["resources"] == {
                "requests": {"cpu": f"{own.cpu_request_m}m", "memory": f"{own.rss_mib}Mi"},
                "limits": {"memory": f"{own.limit_mib}Mi"},
            }, f"{name} {container['name']}"
    assert seen == set(budgets)


@pytest.mark.parametrize("overlay", ["overlays/staging", "overlays/production"])
def test_overlays_set_their_own_namespace_and_addresses(rendered: dict[str, str],
                                                        overlay: str) -> None:
    docs = yaml_docs(rendered[overlay])
    namespace = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    assert all(d["metadata"]["namespace"] == namespace for d in docs if d["kind"] != "Namespace")
    assert not any(net in rendered[overlay] for net in DOCUMENTATION_NETS)
    assert "network-zones" not in rendered[overlay]  # local-config: never deployed
    assert all(net in rendered["base"] for net in DOCUMENTATION_NETS[:2])


@pytest.mark.parametrize("overlay", ["overlays/staging", "overlays/production"])
def test_the_workers_trust_the_pod_network_never_the_sbcs(rendered: dict[str, str],
                                                          overlay: str) -> None:
    """The b2bua NetworkPolicy lets the SBCs reach the workers (in-dialog requests of
    outbound legs); trusting the private ranges (as the base once did) let an SBC send
    a worker a new INVITE around Kamailio. The overlay's pod_cidr is trusted instead."""
    docs = by_kind_name(yaml_docs(rendered[overlay]))
    (settings,) = [doc for (kind, name), doc in docs.items()
                   if kind == "ConfigMap" and name.startswith("dialtone-settings")]
    trusted = [ip_network(net) for net in
               settings["data"]["DIALTONE_SIP_TRUSTED_SOURCES"].split(",")]
    sbcs = [ip_network(peer["ipBlock"]["cidr"])
            for rule in docs[("NetworkPolicy", "b2bua")]["spec"]["ingress"]
            for peer in rule["from"] if "ipBlock" in peer]
    assert sbcs
    assert trusted
    assert not any(sbc.overlaps(net) for sbc in sbcs for net in trusted), (sbcs, trusted)


def test_staging_and_production_differ_as_designed(rendered: dict[str, str]) -> None:
    staging = by_kind_name(yaml_docs(rendered["overlays/staging"]))
    production = by_kind_name(yaml_docs(rendered["overlays/production"]))
    assert staging[("Namespace", "dialtone-staging")]
    assert production[("Namespace", "dialtone")]
    for kind, name in [("StatefulSet", "b2bua"), ("Deployment", "kamailio"),
                       ("Deployment", "webhooks")]:
        assert staging[(kind, name)]["spec"]["replicas"] < production[(kind, name)]["spec"][
            "replicas"]
    assert (staging[("HorizontalPodAutoscaler", "api")]["spec"]["maxReplicas"]
            < production[("HorizontalPodAutoscaler", "api")]["spec"]["maxReplicas"])
    for kind, name in [("Deployment", "api"), ("Deployment", "worker"),
                       ("Deployment", "kamailio"), ("Deployment", "webhooks"),
                       ("StatefulSet", "b2bua")]:
        spread = production[(kind, name)]["spec"]["template"]["spec"]["topologySpreadConstraints"]
        zone = next(c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone")
        assert zone["whenUnsatisfiable"] == "DoNotSchedule", name
        assert "topologySpreadConstraints" not in staging[(kind, name)]["spec"]["template"]["spec"]


SCRAPE_CONFIG = ROOT / "infra" / "prometheus" / "prometheus-kubernetes.yml"


def _keep_regex(job: dict[str, Any], label: str) -> re.Pattern[str]:
    """The `keep` regex a scrape job applies to ``label`` (Prometheus anchors it)."""
    (regex,) = [r["regex"] for r in job["relabel_configs"]
                if r.get("action") == "keep" and r["source_labels"] == [label]]
    return re.compile(regex)


@pytest.mark.parametrize("target", TARGETS)
def test_every_metrics_port_is_scraped_as_its_service_and_reachable_by_prometheus(
    rendered: dict[str, str], target: str,
) -> None:
    """docs/observability.md: Prometheus finds the processes by their container port's
    name (infra/prometheus/prometheus-kubernetes.yml) and labels each with its
    container's name, the service of infra/budgets.toml its RSS rule selects. Each
    such port is the one the process serves on (DIALTONE_METRICS_PORT, on every
    address) and the metrics-scrape NetworkPolicy lets the observability zone in."""
    objects = by_kind_name(yaml_docs(rendered[target]))
    jobs = {j["job_name"]: j for j in yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]}
    by_name = _keep_regex(jobs["dialtone-metrics-ports"],
                          "__meta_kubernetes_pod_container_port_name")
    policy = objects[("NetworkPolicy", "metrics-scrape")]["spec"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "dialtone.io/zone": "observability"}}}]
    allowed = {p["port"] for p in rule["ports"]}
    scraped: dict[str, int] = {}
    for doc in objects.values():
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        pod = doc["spec"]["template"]
        spec = pod["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for port in container.get("ports", []):
                if not by_name.fullmatch(port["name"]):
                    continue
                scraped.setdefault(container["name"], port["containerPort"])
                env = {e["name"]: e.get("value") for e in container.get("env", [])}
                served = int(env.get("DIALTONE_METRICS_PORT") or 0)
                worker = re.fullmatch(r"metrics-w(\d+)", port["name"])
                if worker:  # a B2BUA pool's worker i serves on the pool's port + 1 + i
                    served = child_metrics_port(served, int(worker.group(1)))
                    assert int(worker.group(1)) < int(env["B2BUA_WORKERS_PER_POD"]), port
                assert served == port["containerPort"], container["name"]
                assert env.get("DIALTONE_METRICS_HOST") == "0.0.0.0", container["name"]
                assert port["name"] in allowed, port
                assert policy["podSelector"]["matchLabels"].items() <= \
                    pod["metadata"]["labels"].items(), container["name"]
    # Every long-running dialtone process is scraped (the API on its HTTP port, below).
    assert set(scraped) == {"relay", "worker", "router", "b2bua", "registrations",
                            "recordings", "webhooks"}
    assert set(scraped) <= set(load_budgets())  # the job label is a budget's service
    # The recordings sidecar shares its pod with the B2BUA pool, which serves on
    # DIALTONE_METRICS_PORT + i when it serves: the sidecar's port stays apart.
    assert scraped["recordings"] < 9464
    api = jobs["dialtone-api"]
    (keep,) = [r for r in api["relabel_configs"] if r.get("action") == "keep"
               and len(r["source_labels"]) == 2]
    assert re.fullmatch(keep["regex"], "api;http")
    (container,) = objects[("Deployment", "api")]["spec"]["template"]["spec"]["containers"]
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]


def test_the_kubernetes_scrape_config_passes_promtool_with_its_discovery_replaced(
    tmp_path: Path,
) -> None:
    """Debian's promtool is built without Kubernetes discovery, so it checks the jobs'
    relabelling (regexes, labels) with the discovery swapped for an empty file one."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install prometheus (./dev test does)"
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    for job in config["scrape_configs"]:
        assert [sd["role"] for sd in job.pop("kubernetes_sd_configs")] == ["pod"]
        job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    config["rule_files"] = [str(ROOT / "infra" / "prometheus" / "rules" / "*.yml")]
    (tmp_path / "targets.json").write_text("[]")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
