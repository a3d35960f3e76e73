"""What the timeline routes of agents, queues, IVR menus, numbers and dialplans
share: their paging parameters and the read itself (api/queries/events.py).

Each resource's route file appends one `GET /{key}/timeline` route that names
its aggregate kind and id; another tenant's key (or a key never used) is 404.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query

from api.db import Pool, acquire
from api.problems import NotFoundProblem
from api.queries import events as queries
from api.schemas.events import EventPublic, TimelinePublic

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_VERSION = 2**31 - 1  # versions are PostgreSQL integers

After = Annotated[int, Query(ge=0, le=MAX_VERSION, description=(
    "Only the events after this version (`next_after` of the previous page); "
    "0: from the first."))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=(
    f"Page size, 1..{MAX_LIMIT}."))]

TIMELINE_DESCRIPTION = (
    "Every event of the {what}, in version order, each with its position in the call-centre "
    "log, its data, and the actor and request id of the API command that stored it, if one "
    "did. Paged: pass `next_after` as `after`.")


async def timeline(pool: Pool, tenant: str, kind: str, aggregate_id: UUID, key: str,
                   after: int, limit: int) -> TimelinePublic:
    """The page, or 404 (naming `key`) if the tenant has no such aggregate."""
    async with acquire(pool) as db:
        rows = await queries.timeline(db, tenant, kind, aggregate_id, after, limit + 1)
    if rows is None:
        raise NotFoundProblem(kind, key)
    events = [EventPublic.model_validate(dict(row)) for row in rows[:limit]]
    more = len(rows) > limit
    return TimelinePublic(aggregate_id=aggregate_id, kind=kind, events=events,
                          count=len(events), next_after=events[-1].version if more else None)
