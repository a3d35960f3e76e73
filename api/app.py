"""The app factory: routers, problem handlers, the database pool.

Configuration comes in as arguments (the composition root in `dialtone` reads
the settings); nothing here imports `dialtone`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from api.auth.audit import RequestIdMiddleware
from api.db import CONNECTION_LOST, open_pool
from api.guards import BodyLimit, known_query_only
from api.metrics import HttpMetrics
from api.openapi import openapi_factory
from api.problems import install_problem_handlers, problem_responses
from api.routes import ROUTERS, TAGS
from api.tracing import telemetry

DESCRIPTION = """Queries over dialtone's read models: calls in progress, any call's
state and event timeline, and CDRs (JSON pages or CSV). Errors are RFC 9457
problem details (`application/problem+json`).

Bounds: a request body is at most 1 MiB (413 beyond); lists and maps in bodies
carry `maxItems`/`maxProperties`; text never contains U+0000; a query parameter
a route does not declare is refused (422)."""


def _version() -> str:
    try:
        return version("dialtone")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(
    database_url: str,
    *,
    extra_routers: Iterable[APIRouter] = (),
    pool_max_size: int = 10,
) -> FastAPI:
    """The API over the database at `database_url` (a PostgreSQL URL or libpq
    `key=value` string). `extra_routers` are mounted after the built-in ones;
    services they need go on `app.state` (set by the caller)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_pool(database_url, pool_max_size) as pool:
            app.state.pool = pool
            yield

    # /docs and /redoc with Swagger UI and ReDoc from the installed package, no CDN.
    app = FastAPIOffline(
        title="dialtone API",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=list(TAGS),
        lifespan=lifespan,
        telemetry=telemetry(),  # server spans (api/tracing.py)
        dependencies=[Depends(known_query_only)],
        # Every route may fail unexpectedly or lose the database.
        responses=problem_responses(500, 503),
    )
    app.state.database_url = database_url  # the live feed's LISTEN connection (api/live)
    install_problem_handlers(app, unavailable=CONNECTION_LOST)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestIdMiddleware)  # every answer carries its id
    app.add_middleware(HttpMetrics)  # outermost: times and counts every answer, 413s too
    for router in (*ROUTERS, *extra_routers):
        app.include_router(router)
    app.openapi = openapi_factory(app)  # type: ignore[method-assign]  # FastAPI's documented override
    return app
