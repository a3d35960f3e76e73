"""An event's data for a ``jsonb`` column, serialised by orjson.

Every projected event's data is written as JSON: a rebuild's first pass writes
each stored event once into callcentre_events or call_events. The standard
library's ``json.dumps`` was about 5 % of a rebuild shard's time (py-spy over
bench.reports' two days, 2026-12-05); orjson does the same dicts in a sixth of
the time. The column is ``jsonb``, so PostgreSQL stores the same value whichever
encoder's spacing it was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from psycopg.types.json import Jsonb


def _mapping(value: object) -> dict[Any, Any]:
    """orjson's fallback: a read-only mapping (a frozen envelope's) as a dict; any other
    type it cannot serialise is an error, as with ``json.dumps``."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_mapping)


def jsonb(data: Mapping[str, Any]) -> Jsonb:
    """``data`` as a ``jsonb`` parameter or COPY value."""
    return Jsonb(data, dumps=_dumps)
