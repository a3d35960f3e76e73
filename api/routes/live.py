"""`GET /v1/live`: the supervisor's live view of the caller's tenant, in one read.

What it holds follows the caller's permissions (api/live/snapshot.py); the
stream of changes after it is api/live/stream.py's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.auth.dependencies import Principal, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.live.cache import SnapshotCache
from api.live.service_level import BUCKET_S, next_midnight, service_level_buckets
from api.live.snapshot import live_snapshot
from api.problems import problem_responses
from api.schemas.live import LiveSnapshot, ServiceLevelDay
from api.schemas.targets import KEY_PATTERN
from projections import kpi
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
    about two seconds before the answer (the body is shared meanwhile)."""
    body = await snapshot_cache(request).body(pool, principal, window_s)
    return Response(body, media_type="application/json")


QueueKey = Annotated[str | None, Query(pattern=KEY_PATTERN, description=(
    "Only this queue (its key); every queue the caller may see otherwise."))]


@router.get("/service-level", summary="Each queue's service level today, per 15 minutes",
            responses=problem_responses(422))
async def read_service_level(pool: Pool, principal: Reader,
                             queue: QueueKey = None) -> ServiceLevelDay:
    """The wallboard's line over the day: since local midnight in the tenant's zone,
    one bucket per 15 minutes up to now (the last one partial), each with the
    service level of `GET /v1/live` (docs/metrics.md) over that bucket. Queues follow
    the snapshot's rule: a role without reports:read or config:read sees none."""
    async with acquire(pool) as conn, conn.transaction(isolation="repeatable_read",
                                                       readonly=True):
        now: datetime = await conn.fetchval("SELECT now()")
        zone = await conn.fetchval("SELECT time_zone FROM tenants WHERE id = $1",
                                   principal.tenant) or "UTC"
        today = kpi.today(now, zone)
        sees = principal.can(P.REPORTS_READ) or principal.can(P.CONFIG_READ)
        queues = (await service_level_buckets(conn, principal.tenant, today, queue)
                  if sees else [])
    return ServiceLevelDay(tenant=principal.tenant, as_of=now, time_zone=zone,
                           since=today.since, day_until=next_midnight(now, zone),
                           bucket_s=BUCKET_S, queues=queues)
