"""CSV rendering of query rows: one header row, then one line per row.

Cells: empty for NULL, ISO 8601 for timestamps, compact JSON for lists and
objects (agents, transfers), so every cell parses back unambiguously.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

CSV_MEDIA_TYPE = "text/csv"


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return value


def render(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    writer.writerows([cell(row[c]) for c in columns] for row in rows)
    return out.getvalue()


def wants_csv(accept: str | None) -> bool:
    """Whether the Accept header asks for CSV (anything else gets JSON)."""
    if not accept:
        return False
    media_types = (part.split(";")[0].strip().lower() for part in accept.split(","))
    return CSV_MEDIA_TYPE in media_types
