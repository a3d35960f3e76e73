"""GET /metrics: the Prometheus exposition of this API process (see api/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from api.auth.dependencies import PUBLIC
from api.db import Pool
from api.metrics import refresh_snapshot
from api.routes.health import Config, Watch

TAG = {"name": "metrics", "description": "Prometheus metrics of this API process."}
router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    openapi_extra=PUBLIC,
    summary="Prometheus metrics of this API process",
    description="The Prometheus text exposition (docs/observability.md lists every "
    "series): HTTP requests by route and status, process memory and CPU, and the "
    "platform-wide series read from the database at each scrape (database up, projection "
    "lag, queue service-level tallies). Always 200: an unreachable database shows as "
    "`dialtone_database_up 0`. Public like /healthz, for the scraper; keep it on the "
    "operators' network.",
    response_class=Response,
    responses={200: {"description": "Prometheus text format 0.0.4",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(pool: Pool, config: Config, watch: Watch) -> Response:
    await refresh_snapshot(pool, config, watch)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
