"""A projection group: projections applied together from one batch of events.

Runners (the in-process runner, the Faust workers, rebuild) know groups, not
individual projections. A group receives every envelope of a batch, keeps the
kinds it handles, and records its position for the batch's source in the same
transaction as its rows, even when none of the batch was for it, so that a
runner can resume from the lowest position of its groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from projections.envelope import EventEnvelope

ApplyBatch = Callable[[Connection[Any], Sequence[EventEnvelope], str], int]


@dataclass(frozen=True)
class ProjectionGroup:
    names: tuple[str, ...]  # the projection (table) names; names[0] holds the position
    kinds: frozenset[str]  # aggregate kinds it reads, e.g. {"call"}
    apply: ApplyBatch  # applies a batch in one transaction (autocommit connection)
