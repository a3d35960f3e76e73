"""GET /v1/projections: how far behind its event store each projection is."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth.dependencies import require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.health import projection_lag
from api.routes.health import Config, Watch
from api.schemas.health import ProjectionsPublic

TAG = {"name": "projections", "description": "Lag of each read model behind the event store."}
router = APIRouter(prefix="/v1/projections", tags=["projections"])


@router.get(
    "",
    dependencies=[require(P.CONFIG_READ)],
    summary="Projection lag",
    description="Per projection and event store: the position applied, the store's head, "
    "events behind, seconds since it last advanced, whether it is stalled, and events "
    "parked; with the same per source (the in-process runner's store, or each Kafka "
    "topic-partition a Faust worker applied).",
)
async def list_projections(pool: Pool, config: Config, watch: Watch) -> ProjectionsPublic:
    async with acquire(pool) as db:
        lag = await projection_lag(db, config, watch)
    return ProjectionsPublic(data=lag, count=len(lag))
