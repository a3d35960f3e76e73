"""What the checks of the compose stack's config files (test_stack_*.py) share:
the stack as `docker-compose config` renders it, a service's bind mounts and the
host files its container paths resolve to, the flags of its command, and the
Debian tools that check the files (``./dev test`` installs them).

``stack`` is a module-scoped fixture: each module imports it and renders the
stack once (a tenth of a second), so no module sees another's."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_compose_file import COMPOSE_FILE, REPO, run_compose

PROMETHEUS_RULES = sorted((REPO / "infra" / "prometheus" / "rules").glob("*.yml"))


def tool_path(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                   else None)
    assert found, f"{name} missing: ./dev test installs it (ensure_debian_packages)"
    return found


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = run_compose(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service.get("volumes", [])
            if v["type"] == "bind"}


def mounted_file(service: dict[str, Any], container_path: str) -> Path:
    """The host file a container path of the service resolves to through its binds."""
    for target, source in sorted(bind_mounts(service).items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted")


def command_flag(service: dict[str, Any], name: str) -> str:
    """The value of --name=value (or -name=value) in a service's command."""
    for arg in service["command"]:
        key, _, value = arg.lstrip("-").partition("=")
        if key == name:
            return str(value)
    raise AssertionError(f"no --{name} in {service['command']}")


def scrape_targets(stack: dict[str, Any]) -> dict[str, list[str]]:
    """The compose Prometheus' scrape targets (host:port) by job, from the config file
    its service mounts."""
    prometheus = stack["services"]["prometheus"]
    config = yaml.safe_load(mounted_file(prometheus, command_flag(prometheus, "config.file"))
                            .read_text())
    return {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
            for job in config["scrape_configs"]}
