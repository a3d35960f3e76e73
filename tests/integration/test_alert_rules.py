"""The Prometheus configuration and alert rules, checked by Prometheus' own promtool
(Debian's `prometheus` package; ./dev installs it): the config and rules are valid,
every alert's unit tests pass, every alert has a case where it fires, the
RSS-over-budget rules are current with infra/budgets.toml, and the rules only
use series the processes export (and docs/observability.md describes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Counter, Gauge, Histogram

from api import metrics as api_metrics
from application import metrics as catalogue
from dialtone.budgets import SCRAPED_SERVICES

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infra" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
DOC = ROOT / "docs" / "observability.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool missing: apt-get install prometheus (./dev test does)"
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=120, check=False)


def alerts() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], []).append(rule)
    return found


def test_config_and_rules_are_valid():
    assert RULE_FILES
    assert TEST_FILES
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = promtool("check", "rules", *[str(p) for p in RULE_FILES])
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_every_alert_unit_test_passes():
    result = promtool("test", "rules", *[str(p) for p in TEST_FILES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES), result.stdout


def test_a_failing_expectation_fails(tmp_path):
    """The unit tests can fail: the same rules with a wrong expectation do."""
    document = yaml.safe_load((PROMETHEUS / "tests" / "dialtone.yml").read_text())
    document["rule_files"] = [str(PROMETHEUS / "rules" / "dialtone.yml")]
    first = document["tests"][0]["alert_rule_test"][-1]
    first["exp_alerts"] = []  # it does fire
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(document))
    result = promtool("test", "rules", str(broken))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires():
    firing: dict[str, int] = {}
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    firing[check["alertname"]] = firing.get(check["alertname"], 0) + 1
    defined = alerts()
    assert set(defined) - set(firing) == set(), "alerts without a firing unit test"
    # Generated per service: each of its rules has its own firing case.
    assert firing["DialtoneRssOverBudget"] == len(defined["DialtoneRssOverBudget"])


def test_rss_rules_are_current_with_the_budgets():
    result = subprocess.run([sys.executable, str(PROMETHEUS / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    services = {rule["labels"]["service"] for rule in alerts()["DialtoneRssOverBudget"]}
    assert services == {"api", "relay", "worker", "router", "b2bua", "recordings",
                        "registrations", "webhooks"}


def test_prometheus_scrapes_every_scraped_service_as_its_own_job() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == list(SCRAPED_SERVICES)


def test_every_scraped_dialtone_job_raises_target_down() -> None:
    """A scraped service (prometheus.yml's jobs, the test above) is also watched for
    being down."""
    jobs = set(SCRAPED_SERVICES)
    [rule] = alerts()["DialtoneTargetDown"]
    matched = re.fullmatch(r'up\{job=~"([a-z0-9|-]+)"\} == 0', rule["expr"].strip())
    assert matched, rule["expr"]
    watched = set(matched.group(1).split("|"))
    assert jobs <= watched, jobs - watched


def exported_series() -> set[str]:
    """Every series name the dialtone processes export (catalogue + API snapshot)."""
    names: set[str] = set()
    for value in vars(catalogue).values():
        if isinstance(value, Counter):
            names |= {f"{value._name}_total", f"{value._name}_created"}
        elif isinstance(value, Histogram):
            names |= {f"{value._name}{s}" for s in ("_bucket", "_sum", "_count", "_created")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    families = [*api_metrics._lag_families([]), *api_metrics._queue_families([]),
                *api_metrics._heartbeat_families([], [])]
    names |= {f.name + ("_total" if f.type == "counter" else "") for f in families}
    names.add("dialtone_database_up")
    return names


def test_rules_use_only_exported_series():
    exported = exported_series()
    used = {name for path in RULE_FILES
            for name in re.findall(r"\b(dialtone_[a-z0-9_]+)", path.read_text())}
    assert used, "no dialtone series in the rules?"
    assert used - exported == set()


def test_docs_describe_every_series_and_alert():
    doc = DOC.read_text()
    bases = {re.sub(r"_(total|created|bucket|sum|count)$", "", n) for n in exported_series()}
    assert {b for b in bases if f"`{b}" not in doc} == set()
    assert {a for a in alerts() if f"`{a}`" not in doc} == set()
