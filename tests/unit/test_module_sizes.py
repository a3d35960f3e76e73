"""No Python module in the project is over 400 lines (issue 13, *One call flow*):
the platform's packages, the development tools, the benchmarks and the tests alike.
A module that outgrows it is split by what its parts do, not trimmed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
# Caches, the virtualenv and installed tools live in hidden directories (.venv, .cache).
SKIPPED = {"__pycache__", "node_modules"}


def project_modules() -> Iterator[Path]:
    for top in sorted(ROOT.iterdir()):
        if top.is_dir() and not top.name.startswith(".") and top.name not in SKIPPED:
            for path in top.rglob("*.py"):
                relative = path.relative_to(ROOT)
                if not any(part.startswith(".") or part in SKIPPED for part in relative.parts):
                    yield relative


def lines_of(module: Path) -> int:
    return (ROOT / module).read_text(encoding="utf-8").count("\n")  # as `wc -l` counts


def test_the_walk_reaches_every_kind_of_module() -> None:
    found = set(project_modules())
    assert {Path("domain/call.py"), Path("adapters/sip/worker.py"), Path("bench/sip.py"),
            Path("devtools/path_trace.py"), Path("tests/unit/test_module_sizes.py")} <= found
    assert not any(part.startswith(".") for module in found for part in module.parts)


def test_no_module_is_over_400_lines() -> None:
    over = {str(module): lines for module in project_modules()
            if (lines := lines_of(module)) > LIMIT}
    assert over == {}, f"modules over {LIMIT} lines: {over}"
