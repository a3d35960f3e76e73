"""Webhook delivery on Kubernetes (deploy/k8s/base/webhooks.yaml, rendered with the real
kustomize as in test_k8s_manifests.py): with Kafka configured only `dialtone webhooks`
delivers, so every target runs it, as its own Kafka user, and its NetworkPolicies
let it out to the integrators' public endpoints but to no private address.

The policies are evaluated here as Kubernetes does for a destination outside the
cluster's pods: a pod selected by no policy of a type is not isolated for it; else
a packet passes when some rule of a policy selecting the pod has a peer whose
ipBlock holds the address (and no `except` does) and a port that matches. Its
requests and limits, Pod Security and scrape port: the tests of every workload
(test_k8s_manifests.py, test_k8s_pod_design.py).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.integration.k8s_support import TARGETS, WORKLOAD_KINDS, by_kind_name, yaml_docs

Objects = dict[tuple[str, str], dict[str, Any]]
PUBLIC = ("93.184.215.14", "1.1.1.1", "151.101.1.69")
# RFC 1918, shared address space (RFC 6598), link-local (the clouds' metadata
# endpoint among them) and loopback: never a webhook's destination.
PRIVATE = ("10.0.0.1", "10.40.30.7", "10.255.255.254", "172.16.0.1", "172.31.255.254",
           "192.168.0.1", "192.168.255.254", "100.64.0.1", "100.127.255.254",
           "169.254.169.254", "127.0.0.1")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # what the manifests use
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def _port_matches(rule_ports: list[dict[str, Any]] | None, protocol: str, port: int) -> bool:
    if not rule_ports:
        return True
    # A named port names a port of the destination pod: none outside the cluster.
    return any(p.get("protocol", "TCP") == protocol and isinstance(p.get("port"), int)
               and p["port"] <= port <= p.get("endPort", p["port"]) for p in rule_ports)


def _peer_holds(peer: dict[str, Any], address: str) -> bool:
    block = peer.get("ipBlock")  # pod and namespace selectors match pods, not addresses
    if block is None:
        return False
    ip = ipaddress.ip_address(address)
    return ip in ipaddress.ip_network(block["cidr"]) and not any(
        ip in ipaddress.ip_network(net) for net in block.get("except", []))


def egress_allowed(objects: Objects, labels: dict[str, str], address: str, port: int,
                   protocol: str = "TCP") -> bool:
    """Whether a pod with these labels may send to address:port outside the cluster."""
    policies = [doc["spec"] for (kind, _), doc in objects.items() if kind == "NetworkPolicy"
                and "Egress" in doc["spec"].get("policyTypes", [])
                and _selects(doc["spec"]["podSelector"], labels)]
    if not policies:
        return True
    return any(_port_matches(rule.get("ports"), protocol, port)
               and (not rule.get("to") or any(_peer_holds(p, address) for p in rule["to"]))
               for policy in policies for rule in policy.get("egress", []))


def _pod_labels(objects: Objects, name: str) -> dict[str, str]:
    return dict(objects[("Deployment", name)]["spec"]["template"]["metadata"]["labels"])


def _first_address(objects: Objects, policy: str) -> str:
    cidr = objects[("NetworkPolicy", policy)]["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
    return str(next(ipaddress.ip_network(cidr).hosts()))


@pytest.mark.parametrize("target", TARGETS)
def test_webhooks_run_replicated_as_their_own_kafka_user(rendered: dict[str, str],
                                                         target: str) -> None:
    objects = by_kind_name(yaml_docs(rendered[target]))
    deployment = objects[("Deployment", "webhooks")]
    labels = _pod_labels(objects, "webhooks")
    assert {"dialtone.io/zone": "application", "dialtone.io/postgres": "client",
            "dialtone.io/kafka": "client"}.items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["webhooks"]
    # No probes, as relay.yaml explains: it exits when it cannot work.
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(container)
    env = {e["name"]: e for e in container["env"]}
    assert env["DIALTONE_KAFKA_SASL_USERNAME"]["value"] == "webhooks"
    assert env["DIALTONE_KAFKA_SASL_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "dialtone-kafka-webhooks", "key": "password"}}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "dialtone-database"
    (settings,) = [objects[("ConfigMap", ref["configMapRef"]["name"])]["data"]
                   for ref in container["envFrom"] if "configMapRef" in ref]
    assert settings["DIALTONE_KAFKA_BOOTSTRAP"]  # without Kafka it refuses to start
    assert settings["DIALTONE_KAFKA_SECURITY_PROTOCOL"].startswith("SASL_")
    assert "DIALTONE_WEBHOOK_ALLOW_NETS" not in settings  # public endpoints only
    assert deployment["spec"]["replicas"] >= 1


@pytest.mark.parametrize("target", TARGETS)
def test_webhooks_reach_public_endpoints_but_no_private_address(rendered: dict[str, str],
                                                                target: str) -> None:
    objects = by_kind_name(yaml_docs(rendered[target]))
    labels = _pod_labels(objects, "webhooks")
    for address in PUBLIC:
        for port in (443, 80):
            assert egress_allowed(objects, labels, address, port), (address, port)
        for port in (22, 25, 8080):
            assert not egress_allowed(objects, labels, address, port), (address, port)
        assert not egress_allowed(objects, labels, address, 443, "UDP"), address
    for address in PRIVATE:
        for port in (443, 80):
            assert not egress_allowed(objects, labels, address, port), (address, port)
    # Its data zone as the other clients reach it (each overlay's own addresses).
    assert egress_allowed(objects, labels, _first_address(objects, "egress-postgres"), 5432)
    assert egress_allowed(objects, labels, _first_address(objects, "egress-kafka"), 9092)
    # DNS, to resolve the endpoints: the policy that lets every pod reach kube-dns.
    dns = objects[("NetworkPolicy", "allow-dns")]["spec"]
    assert _selects(dns["podSelector"], labels)
    assert {"protocol": "UDP", "port": 53} in dns["egress"][0]["ports"]


@pytest.mark.parametrize("target", TARGETS)
def test_no_other_workload_reaches_the_internet(rendered: dict[str, str], target: str) -> None:
    """The public egress is the webhooks pods' alone: a pod of any other workload (its
    data zone and SBC peers aside) cannot open a connection to a public endpoint."""
    objects = by_kind_name(yaml_docs(rendered[target]))
    others = [doc for (kind, name), doc in objects.items()
              if kind in WORKLOAD_KINDS and name != "webhooks"]
    assert others
    for doc in others:
        labels = dict(doc["spec"]["template"]["metadata"]["labels"])
        for address in PUBLIC:
            assert not egress_allowed(objects, labels, address, 443), doc["metadata"]["name"]
