"""GET /healthz: the API and its database answer."""

from __future__ import annotations

from fastapi import APIRouter

from api.db import Pool, acquire
from api.schemas.health import HealthPublic

TAG = {"name": "health", "description": "Liveness of the API and its database."}
router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Check the API and its database",
    description="200 when the database answers a query; 503 problem (with Retry-After) "
    "when it does not. The API keeps serving and recovers by itself.",
)
async def healthz(pool: Pool) -> HealthPublic:
    async with acquire(pool) as db:
        await db.fetchval("SELECT 1")
    return HealthPublic()
