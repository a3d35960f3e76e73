"""CSV rendering of query rows: one header row, then one line per row.

Cells: empty for NULL, ISO 8601 for timestamps, compact JSON for lists and
objects (agents, transfers), so every cell parses back unambiguously.

A text cell a spreadsheet would take for a formula is written as text, with a
leading apostrophe (OWASP's advice on CSV injection): one that starts with ``=``,
``@``, a tab or a carriage return, or with ``+`` or ``-`` and is not a plain number.
Callers' numbers and SIP Call-IDs come from whoever places a call, so
``=HYPERLINK(...)`` can arrive as a caller; ``+3225550100`` stays as it is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

CSV_MEDIA_TYPE = "text/csv"
_FORMULA_START = ("=", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-][0-9.]+")


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, str):
        return as_text(value)
    return value


def as_text(value: str) -> str:
    """``value``, with an apostrophe first if a spreadsheet would read it as a formula."""
    if value.startswith(_FORMULA_START) or (
            value.startswith(("+", "-")) and not _SIGNED_NUMBER.fullmatch(value)):
        return "'" + value
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
