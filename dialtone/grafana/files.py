"""The generated dashboard files under infra/grafana/dashboards.

docker-compose.yml mounts that directory into Grafana, whose dashboard provider
(infra/grafana/provisioning/dashboards/dialtone.yml) loads every JSON file there.
The files are committed (compose and Grafana read files, not Python) and must equal
what the code generates: ``dialtone grafana write`` rewrites them, ``--check`` fails
while they are stale, and tests/unit/test_grafana_dashboards.py checks the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialtone.grafana.dashboards import render

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards"


def dump(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def expected(directory: Path = DASHBOARDS_DIR) -> dict[Path, str]:
    """Each dashboard file's path and text as the code generates them."""
    return {directory / f"{uid}.json": dump(model) for uid, model in render().items()}


def stale(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Generated files that are missing or differ, and JSON files the code no longer makes."""
    files = expected(directory)
    differ = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [p for p in sorted(directory.glob("*.json")) if p not in files]
    return differ + extra


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write every dashboard file and remove JSON files the code no longer makes."""
    files = expected(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted(directory.glob("*.json")):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text)
    return list(files)
