"""The RSS budgets of the dialtone processes (``infra/budgets.toml``).

One file holds each service's memory budget in MiB, with a comment per service
saying how it was chosen; this module is the only reader, so the Kubernetes
requests and limits (``deploy/k8s/generate.py``), the alert rules and CI's
memory stage all use the same numbers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

BUDGETS_FILE = Path(__file__).resolve().parent.parent / "infra" / "budgets.toml"

# The services of infra/budgets.toml that Prometheus scrapes, a job each named after
# the service (infra/prometheus/prometheus.yml): the RSS-over-budget rules
# (infra/prometheus/generate.py) and the operations dashboard's memory and
# targets panels (dialtone/grafana/dashboards.py) cover exactly these.
SCRAPED_SERVICES = ("api", "relay", "worker", "router", "b2bua", "recordings",
                    "registrations", "webhooks")


class BudgetError(ValueError):
    """The budgets file is malformed (a missing or non-positive number)."""


@dataclass(frozen=True)
class Budget:
    """One service's budget: RSS in MiB, its CPU request, the limit's headroom and how
    much CI's memory stage lets a process grow after warm-up."""

    service: str
    rss_mib: int
    cpu_request_m: int
    limit_headroom_percent: int
    growth_percent: int

    @property
    def rss_bytes(self) -> int:
        """The budget in bytes, as Prometheus' ``process_resident_memory_bytes`` reads."""
        return self.rss_mib * 1024 * 1024

    @property
    def limit_mib(self) -> int:
        """The Kubernetes memory limit: the budget plus the headroom, rounded up."""
        return -(-self.rss_mib * (100 + self.limit_headroom_percent) // 100)


def _positive_int(table: dict[str, object], key: str, where: str) -> int:
    value = table.get(key)
    # bool is an int subclass: `rss_mib = true` must not read as 1 MiB.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BudgetError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def load_budgets(path: Path = BUDGETS_FILE) -> dict[str, Budget]:
    """Every service's budget, by service name, as written in ``path``."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    defaults = document.get("defaults", {})
    headroom = _positive_int(defaults, "limit_headroom_percent", f"{path} [defaults]")
    growth = _positive_int(defaults, "growth_percent", f"{path} [defaults]")
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        raise BudgetError(f"{path}: no [services.NAME] table")
    budgets: dict[str, Budget] = {}
    for name, table in services.items():
        where = f"{path} [services.{name}]"
        if not isinstance(table, dict):
            raise BudgetError(f"{where}: not a table")
        # A service may allow itself a different growth (say why in the file).
        grows = _positive_int(table, "growth_percent", where) if "growth_percent" in table \
            else growth
        budgets[name] = Budget(service=name, rss_mib=_positive_int(table, "rss_mib", where),
                               cpu_request_m=_positive_int(table, "cpu_request_m", where),
                               limit_headroom_percent=headroom, growth_percent=grows)
    return budgets
