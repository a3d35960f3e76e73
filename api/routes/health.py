"""GET /healthz (what the platform depends on) and GET /readyz (can this API serve)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth.dependencies import PUBLIC
from api.db import Pool, acquire
from api.health import HealthConfig, StallWatch, assess
from api.problems import (
    PROBLEM_MEDIA_TYPE,
    RETRY_AFTER_S,
    ProblemError,
    problem_responses,
)
from api.queries import health as queries
from api.schemas.health import HealthProblem, HealthPublic, ReadyPublic

TAG = {"name": "health", "description": "Liveness of the platform; readiness of this API."}
router = APIRouter(tags=["health"])
UNHEALTHY_TYPE = "urn:dialtone:problem:unhealthy"
NOT_READY_TYPE = "urn:dialtone:problem:not-ready"


async def health_config(request: Request) -> HealthConfig:
    """The composition root puts one on app.state.health; a bare app checks defaults."""
    config = getattr(request.app.state, "health", None)
    return config if isinstance(config, HealthConfig) else HealthConfig()


async def stall_watch(request: Request) -> StallWatch:
    watch = getattr(request.app.state, "stall_watch", None)
    if not isinstance(watch, StallWatch):
        watch = request.app.state.stall_watch = StallWatch()
    return watch


Config = Annotated[HealthConfig, Depends(health_config)]
Watch = Annotated[StallWatch, Depends(stall_watch)]


@router.get(
    "/healthz",
    openapi_extra=PUBLIC,
    response_model=HealthPublic,
    summary="Check the platform: database, services, projections",
    description="200 with `status` `ok`, or `degraded` when projections parked events or "
    "a replica's heartbeat is stale while another instance of its service runs. "
    "503 (problem, with the full report under `health`) when something the platform "
    "depends on fails: a service whose heartbeat is stale (crashed or hung) with no other "
    "instance to cover it, a required service not running, a stalled projection. 503 "
    "problem (with Retry-After) when the "
    "database cannot be reached. For a load balancer's check use /readyz.",
    responses={503: {"model": HealthProblem, "description": "Failing, or database unavailable",
                     "content": {PROBLEM_MEDIA_TYPE: {}}}},
)
async def healthz(pool: Pool, config: Config, watch: Watch, request: Request,
                  ) -> HealthPublic | JSONResponse:  # JSONResponse: the 503 problem
    async with acquire(pool) as db:
        await db.fetchval("SELECT 1")
        health = await assess(db, config, watch)
    if health.status != "failing":
        return health
    problem = HealthProblem(type=UNHEALTHY_TYPE, title="Unhealthy", status=503,
                            detail="; ".join(health.problems), instance=request.url.path,
                            health=health)
    return JSONResponse(problem.model_dump(mode="json", exclude_none=True), status_code=503,
                        media_type=PROBLEM_MEDIA_TYPE,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


@router.get(
    "/readyz",
    openapi_extra=PUBLIC,
    summary="Check that this API process can serve",
    description="200 when the database answers and its schema is migrated; 503 problem "
    "(with Retry-After) otherwise. Depends on nothing else, so a load balancer does not "
    "take every API instance out because a worker elsewhere died.",
    responses=problem_responses(503),
)
async def readyz(pool: Pool, config: Config) -> ReadyPublic:
    async with acquire(pool) as db:
        missing = await queries.missing_tables(db, config.ready_tables)
    if missing:
        raise ProblemError(503, f"The database is not migrated (missing {', '.join(missing)}); "
                           "run `dialtone migrate`.", type_=NOT_READY_TYPE,
                           headers={"Retry-After": str(RETRY_AFTER_S)})
    return ReadyPublic()
