"""domain/ stays pure: it imports only the standard library and eventsourcing.domain."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = ("eventsourcing.domain", "eventsourcing.utils")


def _imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def _allowed(module: str) -> bool:
    root = module.split(".", maxsplit=1)[0]
    return (
        root in sys.stdlib_module_names
        or root == "domain"
        or module.startswith(ALLOWED_THIRD_PARTY)
    )


def test_domain_imports_only_stdlib_and_eventsourcing_domain() -> None:
    offenders = {
        f"{path.relative_to(DOMAIN.parent)}: {module}"
        for path in DOMAIN.rglob("*.py")
        for module in _imported_modules(path)
        if not _allowed(module)
    }
    assert not offenders, f"domain/ must stay pure, found: {sorted(offenders)}"


def test_contract_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import psycopg\nfrom eventsourcing.application import Application\n")
    assert {m for m in _imported_modules(bad) if not _allowed(m)} == {
        "psycopg", "eventsourcing.application"
    }
