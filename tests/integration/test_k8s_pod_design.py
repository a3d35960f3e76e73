"""What every pod of the Kubernetes manifests (deploy/k8s, rendered with the real
kustomize, as in test_k8s_manifests.py) promises beyond its schema.

Every pod passes Pod Security (restricted, so baseline too) and references its
secrets by name only; the scaling design holds (api and worker autoscaled, one
Recreate replica of relay, router and registrations, webhooks replicated at a
fixed count, disruption budgets), Kamailio's dispatcher list matches the B2BUA
replicas and every worker of a pod's pool has its SIP port and RTP block open;
each b2bua pod uploads its recordings through a native sidecar.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.k8s_support import TARGETS, by_kind_name, pod_specs, yaml_docs


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_passes_pod_security(rendered: dict[str, str], target: str) -> None:
    docs = yaml_docs(rendered[target])
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    assert len(namespaces) == 1
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    for name, pod in pod_specs(docs):
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
    objects = by_kind_name(yaml_docs(rendered[target]))
    hpas = {name for kind, name in objects if kind == "HorizontalPodAutoscaler"}
    assert hpas == {"api", "worker"}
    for single in ("relay", "router", "registrations"):
        deployment = objects[("Deployment", single)]
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pdbs = {name for kind, name in objects if kind == "PodDisruptionBudget"}
    assert pdbs == {"api", "worker", "b2bua", "kamailio", "webhooks"}
    # Webhook delivery: replicated for availability, one pod drained at a time, no
    # HPA (hpas above: its pace is the endpoints', not its CPU).
    webhooks = objects[("Deployment", "webhooks")]["spec"]
    assert webhooks["replicas"] >= 1
    assert webhooks["strategy"]["type"] == "RollingUpdate"
    assert objects[("PodDisruptionBudget", "webhooks")]["spec"]["maxUnavailable"] == 1
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
    objects = by_kind_name(yaml_docs(rendered[target]))
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
