"""Every module-level class name is used once across the platform's packages (*One
call flow*): a reader who meets ``Outcome`` or ``Touched`` in a traceback, a log
line or a grep knows which one it is. Events nested in their aggregate
(``Call.Ended``, ``Queue.Ended``) are named by the aggregate too, so they are not
counted."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "application", "adapters", "projections", "api", "streams", "dialtone",
            "devtools")


def module_level_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


def test_no_two_module_level_classes_share_a_name() -> None:
    homes: defaultdict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in module_level_classes(path):
                homes[name].append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in homes.items() if len(paths) > 1}
    assert not shared, f"class names defined more than once: {shared}"


def test_the_check_reads_classes_at_module_level_only(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("class Call:\n    class Ended:\n        pass\n\n\nclass Queue:\n    pass\n")
    assert module_level_classes(source) == ["Call", "Queue"]
