"""Kamailio in the Kubernetes manifests (deploy/k8s, rendered with the real
kustomize, as in test_k8s_manifests.py).

The rendered manifests wire the registrar (its Secret, the alias the b2bua
workers' edge name uses, egress to Redis and PostgreSQL) and mount the optional
TLS Secret where the init step looks; the kamailio-config ConfigMap carries
every file of infra/kamailio; and the init container's script, run as the pod
runs it, writes the dispatcher list of every B2BUA worker and a config the real
Kamailio accepts (`kamailio -c`, Debian's kamailio package): plain, with the
registrar on, and with TLS.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.certificates import make_server_certificate
from tests.integration.k8s_support import K8S, ROOT, TARGETS, by_kind_name, required_file, yaml_docs


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
    objects = by_kind_name(yaml_docs(rendered[target]))
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
    required_file(Path(kamailio))
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
    required_file(Path(kamailio))
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
    objects = by_kind_name(yaml_docs(rendered["base"]))
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
