"""The Kubernetes manifests (deploy/k8s): rendered with the real kustomize and
validated with kubeconform -strict against the Kubernetes JSON schemas.

The tools are Go modules that ``./dev test`` installs with ``go install`` into
.cache/go/bin; the schemas come from the PyPI package kubernetes-validate, which
``./dev test`` installs into .cache/k8s (docs/deployment.md, "Validation").
Beyond the schemas, the checks here hold the design's promises: requests and
limits equal infra/budgets.toml, every pod passes Pod Security (restricted, so
baseline too), Kamailio's dispatcher list matches the B2BUA replicas, each
overlay fills in its own network addresses, production spreads over zones.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from dialtone.budgets import load_budgets
from dialtone.commands.b2bua_pool import child_metrics_port
from tests.fixtures.certificates import make_server_certificate

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
GOBIN = ROOT / ".cache" / "go" / "bin"
KUSTOMIZE = GOBIN / "kustomize-v5.8.1"
KUBECONFORM = GOBIN / "kubeconform-v0.8.0"
SCHEMA_PACKAGE = (ROOT / ".cache" / "k8s" / "kubernetes-validate-1.37.0" / "kubernetes_validate"
                  / "kubernetes-json-schema")
# Oldest and newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
TARGETS = ("base", "overlays/staging", "overlays/production")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
DOCUMENTATION_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")  # RFC 5737


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: `./dev test` installs it "
                    "(ensure_k8s_tools)")
    return path


def _build(target: str) -> str:
    result = subprocess.run([str(_require(KUSTOMIZE)), "build", str(K8S / target)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {target: _build(target) for target in TARGETS}


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


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
        source = _require(SCHEMA_PACKAGE / f"v{version}-local-strict")
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
        [str(_require(KUBECONFORM)), "-strict", "-summary", "-kubernetes-version", version,
         "-schema-location", str(schemas), str(manifest)],
        capture_output=True, text=True, timeout=300, check=False)


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def _by_kind_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


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
    count = len(_docs(rendered[target]))
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
    docs = _docs(rendered["overlays/production"])
    api = _by_kind_name(docs)[("Deployment", "api")]
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
    for name, pod in _pod_specs(_docs(rendered[target])):
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


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_passes_pod_security(rendered: dict[str, str], target: str) -> None:
    docs = _docs(rendered[target])
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert len(namespaces) == 1
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    for name, pod in _pod_specs(docs):
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context == {"allowPrivilegeEscalation": False,
                               "readOnlyRootFilesystem": True,
                               "capabilities": {"drop": ["ALL"]}}, f"{name} {container['name']}"
            assert all("hostPort" not in port for port in container.get("ports", [])), name
            # Secrets are referenced by name only: no literal credential in the manifests.
            for env in container.get("env", []):
                if re.search("PASSWORD|SIGNING_KEY|DATABASE_URL|DB_URL|REDIS_URL", env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{name} {env['name']}"
    assert not any(d["kind"] == "Secret" for d in docs)


@pytest.mark.parametrize("target", TARGETS)
def test_scaling_design(rendered: dict[str, str], target: str) -> None:
    objects = _by_kind_name(_docs(rendered[target]))
    hpas = {name for kind, name in objects if kind == "HorizontalPodAutoscaler"}
    assert hpas == {"api", "worker"}
    for single in ("relay", "router", "registrations"):
        deployment = objects[("Deployment", single)]
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pdbs = {name for kind, name in objects if kind == "PodDisruptionBudget"}
    assert pdbs == {"api", "worker", "b2bua", "kamailio"}
    # Kamailio's dispatcher list has one line per B2BUA pod.
    replicas = objects[("StatefulSet", "b2bua")]["spec"]["replicas"]
    init = objects[("Deployment", "kamailio")]["spec"]["template"]["spec"]["initContainers"][0]
    assert {"name": "B2BUA_REPLICAS", "value": str(replicas)} in init["env"]
    _check_the_b2bua_pool(objects, init)


def _udp_ports(rules: list[dict[str, Any]]) -> set[int]:
    """The UDP ports a NetworkPolicy's ingress or egress rules open."""
    return {port for rule in rules for p in rule["ports"] if p["protocol"] == "UDP"
            for port in range(p["port"], p.get("endPort", p["port"]) + 1)}


def _check_the_b2bua_pool(objects: dict[tuple[str, str], dict[str, Any]],
                          init: dict[str, Any]) -> None:
    """Each b2bua pod runs a pool of B2BUA_WORKERS_PER_POD workers on 5070 + i:
    Kamailio lists that many ports a pod, and the container, the Service and the
    NetworkPolicies open every worker's SIP port and RTP block."""
    statefulset = objects[("StatefulSet", "b2bua")]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    workers = int(env["B2BUA_WORKERS_PER_POD"])
    assert workers > 1
    assert {"name": "B2BUA_WORKERS_PER_POD", "value": str(workers)} in init["env"]
    args = container["args"]
    assert args[args.index("--workers") + 1] == "$(B2BUA_WORKERS_PER_POD)"
    assert args[args.index("--port") + 1] == "5070"
    sip = [5070 + i for i in range(workers)]
    rtp = {port for i in range(workers)
           for port in range(10000 + (5070 + i) % 500 * 40, 10000 + (5071 + i) % 500 * 40)}
    assert [p["containerPort"] for p in container["ports"] if p["protocol"] == "UDP"] == sip
    # Each worker's metrics port, next to the parent's (docs/observability.md).
    assert [p["containerPort"] for p in container["ports"] if p["name"].startswith("metrics-w")] \
        == [9465 + i for i in range(workers)]
    assert [p["port"] for p in objects[("Service", "b2bua")]["spec"]["ports"]] == sip
    policy = objects[("NetworkPolicy", "b2bua")]["spec"]
    assert _udp_ports(policy["ingress"][:1]) == set(sip)  # from Kamailio
    assert _udp_ports(policy["ingress"][1:]) >= set(sip) | rtp  # from the SBC / media relay
    kamailio = objects[("NetworkPolicy", "kamailio")]["spec"]
    assert _udp_ports(kamailio["egress"][:1]) == set(sip)


@pytest.mark.parametrize("target", TARGETS)
def test_recordings_are_uploaded_by_a_native_sidecar_of_each_b2bua_pod(
    rendered: dict[str, str], target: str,
) -> None:
    """docs/recordings.md, "Kubernetes": `dialtone recordings` runs beside each pod's
    workers on the same persistent volume, as a native sidecar (stopped after the
    workers, so an eviction keeps it uploading), with its S3 settings from a
    ConfigMap and a Secret; the pods that reach the storage may, by address."""
    objects = _by_kind_name(_docs(rendered[target]))
    statefulset = objects[("StatefulSet", "b2bua")]
    pod = statefulset["spec"]["template"]
    (b2bua,) = pod["spec"]["containers"]
    (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "recordings"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["args"] == ["recordings"]
    claims = {c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]}
    for container in (b2bua, sidecar):
        (mount,) = [m for m in container["volumeMounts"] if m["name"] in claims]
        assert mount == {"name": "recordings", "mountPath": "/var/lib/dialtone"}, container["name"]
    sources = sidecar["envFrom"]
    assert {"secretRef": {"name": "dialtone-recordings-s3", "optional": True}} in sources
    (settings,) = [objects[("ConfigMap", ref["configMapRef"]["name"])]["data"]
                   for ref in sources if "configMapRef" in ref
                   and ref["configMapRef"]["name"].startswith("dialtone-recordings-")]
    assert settings["DIALTONE_RECORDINGS_DIRECTORY"] == "/var/lib/dialtone/recordings"
    assert settings["DIALTONE_RECORDINGS_S3_ENDPOINT_URL"].startswith("https://")
    egress = objects[("NetworkPolicy", "egress-object-storage")]["spec"]
    label = egress["podSelector"]["matchLabels"]
    for name in ("b2bua", "api"):
        kind = "StatefulSet" if name == "b2bua" else "Deployment"
        labels = objects[(kind, name)]["spec"]["template"]["metadata"]["labels"]
        assert label.items() <= labels.items(), name


def _secret_ref(env: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == name]
    return dict(ref)


@pytest.mark.parametrize("target", TARGETS)
def test_the_registrar_is_wired(rendered: dict[str, str], target: str) -> None:
    """docs/edge.md, "Registrar", Kubernetes: Kamailio's registrar gets its two
    servers from the Secret dialtone-registrar (optional: without it REGISTER is
    refused), `dialtone registrations` reads the same Redis, once (one replica,
    Recreate), the b2bua workers send their offers to registered devices through
    the kamailio Service under a name Kamailio takes as its own, and the pods
    that reach Redis and PostgreSQL may, by address."""
    objects = _by_kind_name(_docs(rendered[target]))
    registrations = objects[("Deployment", "registrations")]
    pod = registrations["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["registrations"]
    assert _secret_ref(container["env"], "DIALTONE_REGISTRATION_REDIS_URL") == {
        "name": "dialtone-registrar", "key": "REGISTRATION_REDIS_URL"}
    assert _secret_ref(container["env"], "DATABASE_URL")["name"] == "dialtone-database"
    assert not any(k == "HorizontalPodAutoscaler" and n == "registrations" for k, n in objects)
    kamailio = objects[("Deployment", "kamailio")]["spec"]["template"]
    init = kamailio["spec"]["initContainers"][0]
    for key in ("SUBSCRIBER_DB_URL", "REGISTRATION_REDIS_URL"):
        assert _secret_ref(init["env"], key) == {"name": "dialtone-registrar", "key": key,
                                                 "optional": True}
    init_env = {e["name"]: e.get("value") for e in init["env"]}
    aliases = init_env["EDGE_ALIASES"].split(",")
    statefulset = objects[("StatefulSet", "b2bua")]["spec"]["template"]["spec"]
    b2bua_env = {e["name"]: e for e in statefulset["containers"][0]["env"]}
    edge = b2bua_env["DIALTONE_SIP_EDGE"]["value"]
    host, port = edge.rsplit(":", 1)
    assert port == "5060"
    # Both name the Service in the pod's own namespace, each through its own variable.
    assert host.replace("$(POD_NAMESPACE)", "$(NAMESPACE)") in aliases
    assert b2bua_env["POD_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}}
    assert host.split(".", 1)[0] == objects[("Service", "kamailio")]["metadata"]["name"]
    redis = objects[("NetworkPolicy", "egress-redis")]["spec"]
    assert {p["port"] for rule in redis["egress"] for p in rule["ports"]} >= {6379}
    postgres = objects[("NetworkPolicy", "egress-postgres")]["spec"]
    for labels in (pod["metadata"]["labels"], kamailio["metadata"]["labels"]):
        for policy in (redis, postgres):
            assert policy["podSelector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", ["overlays/staging", "overlays/production"])
def test_overlays_set_their_own_namespace_and_addresses(rendered: dict[str, str],
                                                        overlay: str) -> None:
    docs = _docs(rendered[overlay])
    namespace = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    assert all(d["metadata"]["namespace"] == namespace for d in docs if d["kind"] != "Namespace")
    assert not any(net in rendered[overlay] for net in DOCUMENTATION_NETS)
    assert "network-zones" not in rendered[overlay]  # local-config: never deployed
    assert all(net in rendered["base"] for net in DOCUMENTATION_NETS[:2])


def test_staging_and_production_differ_as_designed(rendered: dict[str, str]) -> None:
    staging = _by_kind_name(_docs(rendered["overlays/staging"]))
    production = _by_kind_name(_docs(rendered["overlays/production"]))
    assert staging[("Namespace", "dialtone-staging")]
    assert production[("Namespace", "dialtone")]
    for kind, name in [("StatefulSet", "b2bua"), ("Deployment", "kamailio")]:
        assert staging[(kind, name)]["spec"]["replicas"] < production[(kind, name)]["spec"][
            "replicas"]
    assert (staging[("HorizontalPodAutoscaler", "api")]["spec"]["maxReplicas"]
            < production[("HorizontalPodAutoscaler", "api")]["spec"]["maxReplicas"])
    for kind, name in [("Deployment", "api"), ("Deployment", "worker"),
                       ("Deployment", "kamailio"), ("StatefulSet", "b2bua")]:
        spread = production[(kind, name)]["spec"]["template"]["spec"]["topologySpreadConstraints"]
        zone = next(c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone")
        assert zone["whenUnsatisfiable"] == "DoNotSchedule", name
        assert "topologySpreadConstraints" not in staging[(kind, name)]["spec"]["template"]["spec"]


def test_the_kamailio_config_map_carries_every_file_of_the_configuration() -> None:
    """kamailio.cfg includes its sibling files: each must be in the ConfigMap the
    pod mounts, or Kamailio would not start in the cluster."""
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    (config_map,) = [m for m in kustomization["configMapGenerator"]
                     if m["name"] == "kamailio-config"]
    listed = {Path(f).name for f in config_map["files"] if f.endswith(".cfg")}
    assert listed == {p.name for p in (ROOT / "infra" / "kamailio").glob("*.cfg")}
    # The init step sources the render function shared with compose from the same map.
    assert "generated/render-config.sh" in config_map["files"]


def _run_init_step(out: Path, **extra: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "SRC_DIR": str(K8S / "base" / "generated"),
           "OUT_DIR": str(out), "POD_IP": "127.0.0.1", "NAMESPACE": "dialtone-staging",
           "B2BUA_REPLICAS": "3", **extra}
    subprocess.run(["sh", str(K8S / "base" / "kamailio" / "render-kamailio.sh")], env=env,
                   check=True, timeout=30)


def _kamailio_check(config: Path) -> subprocess.CompletedProcess[str]:
    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    _require(Path(kamailio))
    return subprocess.run([kamailio, "-c", "-f", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_init_step_lists_every_worker_of_each_pods_pool(tmp_path: Path) -> None:
    _run_init_step(tmp_path, B2BUA_WORKERS_PER_POD="4")
    lines = (tmp_path / "dispatcher.list").read_text().splitlines()
    assert lines == [f"1 sip:b2bua-{i}.b2bua.dialtone-staging.svc.cluster.local:{5070 + j} 0 0 "
                     f"duid=b2bua-{i}:{5070 + j};maxload=2" for i in range(3) for j in range(4)]
    check = _kamailio_check(tmp_path / "kamailio.cfg")
    assert check.returncode == 0, check.stdout + check.stderr


def test_kamailio_config_written_by_the_init_step_passes_kamailio_check(tmp_path: Path) -> None:
    """The init container's script, run as the pod runs it, gives a config that
    the real Kamailio accepts (modules, parameters, listen address)."""
    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    _require(Path(kamailio))
    # As in the pod without the kamailio-tls Secret: the paths named, no files.
    _run_init_step(tmp_path, TLS_CERTIFICATE=str(tmp_path / "none" / "tls.crt"),
                   TLS_PRIVATE_KEY=str(tmp_path / "none" / "tls.key"))
    lines = (tmp_path / "dispatcher.list").read_text().splitlines()
    assert lines == [f"1 sip:b2bua-{i}.b2bua.dialtone-staging.svc.cluster.local:5070 0 0 "
                     f"duid=b2bua-{i};maxload=2" for i in range(3)]
    config = (tmp_path / "kamailio.cfg").read_text()
    assert "LISTEN_ADDR" not in config
    assert "DISPATCHER_LIST" not in config
    assert 'modparam("dispatcher", "ds_dns_mode", 4)' in config
    check = subprocess.run([kamailio, "-c", "-f", str(tmp_path / "kamailio.cfg")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "#!define WITH_TLS" not in config  # UDP only, as without a certificate


def test_the_init_step_switches_the_registrar_on_with_its_servers(tmp_path: Path) -> None:
    """With the dialtone-registrar Secret's two URLs (a password with sed's special
    characters) and the Service's name as an alias, the init step's config has
    the registrar on, names those servers, takes the alias as its own and passes
    `kamailio -c`; without them the registrar stays off."""
    (tmp_path / "off").mkdir()
    _run_init_step(tmp_path / "off")
    assert "#!define WITH_REGISTRAR" not in (tmp_path / "off" / "kamailio.cfg").read_text()
    out = tmp_path / "on"
    out.mkdir()
    database = "postgres://kamailio:p|w&d@db.internal:5432/dialtone"
    redis_url = "redis://:s3cr&t@redis.internal:6379/0"
    _run_init_step(out, SUBSCRIBER_DB_URL=database, REGISTRATION_REDIS_URL=redis_url,
                   EDGE_ALIASES="kamailio.dialtone-staging.svc.cluster.local")
    config = (out / "kamailio.cfg").read_text()
    assert config.splitlines()[1] == "#!define WITH_REGISTRAR"
    assert 'alias="kamailio.dialtone-staging.svc.cluster.local"' in config.splitlines()
    registrar = (out / "registrar.cfg").read_text()
    assert database in registrar
    assert redis_url in registrar
    check = _kamailio_check(out / "kamailio.cfg")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "kamailio.dialtone-staging.svc.cluster.local" in check.stdout + check.stderr


def test_kamailio_serves_tls_when_the_secret_is_there(rendered: dict[str, str],
                                                        tmp_path: Path) -> None:
    """The optional kamailio-tls Secret is mounted where the init step looks for
    the certificate and where Kamailio reads it; with the files there the init
    step's config listens for TLS on 5061 and passes `kamailio -c`."""
    objects = _by_kind_name(_docs(rendered["base"]))
    pod = objects[("Deployment", "kamailio")]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "kamailio-tls"
    assert volume["secret"]["optional"] is True
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    for container in (pod["initContainers"][0], pod["containers"][0]):
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
        for name in ("TLS_CERTIFICATE", "TLS_PRIVATE_KEY"):
            assert Path(env[name]).parent == Path(mount["mountPath"]), container["name"]
    assert {"name": "sip-tls", "containerPort": 5061, "protocol": "TCP"} in \
        pod["containers"][0]["ports"]
    service_ports = objects[("Service", "kamailio")]["spec"]["ports"]
    assert {(p["port"], p["protocol"]) for p in service_ports} == {(5060, "UDP"), (5061, "TCP")}
    files = make_server_certificate(tmp_path / "certificate")
    out = tmp_path / "out"
    out.mkdir()
    _run_init_step(out, TLS_CERTIFICATE=str(files.certificate),
                   TLS_PRIVATE_KEY=str(files.private_key))
    assert (out / "kamailio.cfg").read_text().splitlines()[1] == "#!define WITH_TLS"
    tls = (out / "tls.cfg").read_text()
    assert "listen=tls:127.0.0.1:5061" in tls
    assert f'modparam("tls", "certificate", "{files.certificate}")' in tls
    assert f'modparam("tls", "private_key", "{files.private_key}")' in tls
    check = _kamailio_check(out / "kamailio.cfg")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tls: 127.0.0.1 [127.0.0.1]:5061" in check.stdout + check.stderr


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
    objects = _by_kind_name(_docs(rendered[target]))
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
                            "recordings"}
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
