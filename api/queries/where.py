"""A WHERE clause built from optional filters, with asyncpg's `$n` parameters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Where:
    clauses: list[str] = field(default_factory=list)
    args: list[object] = field(default_factory=list)

    def add(self, template: str, *values: object) -> None:
        """Add a condition; each `{}` in `template` becomes the next parameter."""
        placeholders = []
        for value in values:
            self.args.append(value)
            placeholders.append(f"${len(self.args)}")
        self.clauses.append(template.format(*placeholders))

    def equal(self, column: str, value: object | None) -> None:
        """`column = value`, unless the filter was not given (None)."""
        if value is not None:
            self.add(f"{column} = {{}}", value)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"
