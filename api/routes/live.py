"""`GET /v1/live`: the supervisor's live view of the caller's tenant, in one read.

What it holds follows the caller's permissions (api/live/snapshot.py); the
stream of changes after it is api/live/stream.py's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.dependencies import Principal, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.live.snapshot import live_snapshot
from api.problems import problem_responses
from api.schemas.live import LiveSnapshot
from projections.kpi import DEFAULT_WINDOW_S

TAG = {"name": "live", "description": (
    "The supervisor's live view: queues now, today (since local midnight in the tenant's "
    "zone) and over a rolling window; agents; calls in progress; the tenant summary. "
    "Each figure's formula is in docs/metrics.md.")}
router = APIRouter(prefix="/v1/live", tags=["live"])
Reader = Annotated[Principal, require(P.LIVE_READ)]
WindowS = Annotated[float, Query(ge=60, le=86_400, description=(
    "The rolling window, seconds (15 minutes by default)."))]


@router.get("", summary="A snapshot of the live view, with the store position it reflects",
            responses=problem_responses(422))
async def read_live(pool: Pool, principal: Reader,
                    window_s: WindowS = DEFAULT_WINDOW_S) -> LiveSnapshot:
    async with acquire(pool) as db:
        now: datetime = await db.fetchval("SELECT now()")
        return await live_snapshot(db, principal, now, window_s)
