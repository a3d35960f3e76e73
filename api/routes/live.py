"""`GET /v1/live`: the supervisor's live view of the caller's tenant, in one read.

What it holds follows the caller's permissions (api/live/snapshot.py); the
stream of changes after it is api/live/stream.py's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.auth.dependencies import Principal, require
from api.auth.permissions import P
from api.db import Pool
from api.live.cache import SnapshotCache
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


def snapshot_cache(request: Request) -> SnapshotCache:
    """This process's rendered bodies (api/live/cache.py), made on first use; a test
    may put its own on `app.state.live_cache` first."""
    cache: SnapshotCache | None = getattr(request.app.state, "live_cache", None)
    if cache is None:
        cache = request.app.state.live_cache = SnapshotCache(live_snapshot)
    return cache


@router.get("", summary="A snapshot of the live view, with the store position it reflects",
            response_model=LiveSnapshot, responses=problem_responses(422))
async def read_live(request: Request, pool: Pool, principal: Reader,
                    window_s: WindowS = DEFAULT_WINDOW_S) -> Response:
    """Never older than a projection commit made before the request; time-driven
    values (waits, time in state, the windows' ends) are as of `as_of`, at most
    about a second before the answer (the body is shared for that long)."""
    body = await snapshot_cache(request).body(pool, principal, window_s)
    return Response(body, media_type="application/json")
