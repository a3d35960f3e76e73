"""What the tests of the Kubernetes manifests (deploy/k8s) share: where the
manifests and the tools ``./dev test`` installs are, kustomize's rendering of
each target, and the rendered objects by kind and name. The render itself is
the session fixture ``rendered`` of tests/integration/conftest.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
GOBIN = ROOT / ".cache" / "go" / "bin"
KUSTOMIZE = GOBIN / "kustomize-v5.8.1"
TARGETS = ("base", "overlays/staging", "overlays/production")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}


def required_file(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: `./dev test` installs it "
                    "(ensure_k8s_tools)")
    return path


def kustomize_build(target: str) -> str:
    result = subprocess.run([str(required_file(KUSTOMIZE)), "build", str(K8S / target)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def by_kind_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
