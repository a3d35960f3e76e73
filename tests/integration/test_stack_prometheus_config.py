"""The compose stack's Prometheus config, as docker-compose.yml mounts it, checked by
`promtool check config` (Debian's prometheus package).

promtool accepts the config laid out as the container sees it, every rule file
of the repository found through the mounts, and fails when the rules are not
mounted; every scrape target is a compose service that serves that port, every
long-running dialtone service is a scrape job named after its memory budget, and
the alerts go to the compose Alertmanager (whose config test_stack_configs.py
checks).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from dialtone.budgets import load_budgets
from tests.integration.stack_support import (
    PROMETHEUS_RULES,
    bind_mounts,
    command_flag,
    mounted_file,
    run_tool,
    scrape_targets,
    stack,
    tool_path,
)

__all__ = ["stack"]  # the fixture, shared

METRICS_PORT = "9464"


def _lay_out(service: dict[str, Any], root: Path) -> None:
    """Copy a service's bind mounts under root at their container paths."""
    for target, source in bind_mounts(service).items():
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy(source, destination)


def test_promtool_accepts_the_config_and_rules_as_the_container_sees_them(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    prometheus = stack["services"]["prometheus"]
    _lay_out(prometheus, tmp_path)
    config = tmp_path / command_flag(prometheus, "config.file").lstrip("/")
    checked = run_tool(tool_path("promtool"), "check", "config", str(config))
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
    config = tmp_path / command_flag(prometheus, "config.file").lstrip("/")
    checked = run_tool(tool_path("promtool"), "check", "config", str(config))
    assert checked.returncode != 0


def test_every_scrape_target_is_a_compose_service_serving_that_port(
    stack: dict[str, Any],
) -> None:
    services = stack["services"]
    targets = scrape_targets(stack)
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
RUN_ONCE = {"kafka-init", "migrate", "grafana-reader"}


def test_every_long_running_dialtone_service_is_a_scrape_job_named_after_its_budget(
    stack: dict[str, Any],
) -> None:
    """A dialtone process left out of prometheus.yml would be down without an alert
    and over its memory budget unseen (the RSS rules select on the job)."""
    services = stack["services"]
    dialtone = {name for name, service in services.items()
                if str(service.get("image", "")).startswith("dialtone") and name not in RUN_ONCE}
    assert dialtone >= {"recordings", "registrations", "webhooks"}
    assert set(scrape_targets(stack)) >= dialtone
    assert set(scrape_targets(stack)) <= set(load_budgets())


def test_prometheus_sends_alerts_to_the_compose_alertmanager(stack: dict[str, Any]) -> None:
    prometheus = stack["services"]["prometheus"]
    config_file = mounted_file(prometheus, command_flag(prometheus, "config.file"))
    config = yaml.safe_load(config_file.read_text())
    targets = [t for am in config["alerting"]["alertmanagers"]
               for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    assert any(p["target"] == 9093 for p in stack["services"]["alertmanager"]["ports"])
