"""`GET /v1/live/at?t=`: the tenant's live view as it was at a past instant.

Next to `GET /v1/live` (the view now) and under the same prefix, with the same
`/at?t=` suffix as `/v1/queues/{key}/at` and `/v1/agents/{key}/at`: one body
shape for now and for then. A separate path (not `/v1/live?at=`) because the
view now is one shared, cached body per tenant and role (api/live/cache.py),
while a past instant is neither shared nor cached, and it needs another
permission (history:read). What it computes: api/live/at.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.auth.dependencies import Principal, require
from api.auth.permissions import P
from api.db import Pool
from api.live.at import At, read_at
from api.problems import problem_responses
from api.schemas.live import LiveSnapshot

TAG = {"name": "live", "description": "The supervisor's live view."}  # declared by live.py
router = APIRouter(prefix="/v1/live", tags=["live"])
Historian = Annotated[Principal, require(P.HISTORY_READ)]


@router.get("/at", summary="The live view as it was at a past instant t",
            response_model=LiveSnapshot, responses=problem_responses(422))
async def read_live_at(pool: Pool, principal: Historian, t: At) -> LiveSnapshot:
    """Who was waiting and since when, each agent's state and today's figures as of
    `t`, from the events that occurred at or before `t` (docs/history.md: what
    is current rather than as of `t`, and how late-stored events count).
    `calls` is null: a past call is read from its timeline."""
    return await read_at(pool, principal, t)
