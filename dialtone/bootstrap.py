"""The composition root: builds the application services, projection groups and runners."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from fastapi import FastAPI

from api.app import create_app
from api.auth.audit_routes import router as audit_router
from api.auth.routes import router as auth_router
from api.health import EventStore, HealthConfig
from api.pages import BROWSER_ROUTERS
from api.routes import CALLCENTRE_ROUTERS
from application.callcentre import CallCentreService
from application.calls import CallService
from application.router import RoutingProcess
from dialtone.database import eventsourcing_env
from dialtone.settings import Settings
from projections import callcentre, calls
from projections.registry import ProjectionGroup
from streams.inprocess import InProcessProjectionRunner
from streams.routing_process import RoutingRunner
from streams.topics import topic_for

# Every projection group the runners and workers apply.
PROJECTION_GROUPS: tuple[ProjectionGroup, ...] = (calls.GROUP, callcentre.GROUP)


def call_service(database_url: str) -> CallService:
    return CallService(env=eventsourcing_env(database_url))


def callcentre_service(database_url: str) -> CallCentreService:
    return CallCentreService(env=eventsourcing_env(database_url))


def routing_runner(database_url: str) -> RoutingRunner:
    """The routing process on its own service instance (its own cache and connections)."""
    return RoutingRunner(RoutingProcess(callcentre_service(database_url)), database_url)


def event_sources(database_url: str) -> list[Application[Any]]:
    """The applications whose notification logs feed Kafka and the projections."""
    return [call_service(database_url), callcentre_service(database_url)]


def relay_kinds(app: Application[Any]) -> tuple[str, ...]:
    """The aggregate kinds (hence Kafka topics) an event source publishes."""
    if isinstance(app, CallCentreService):
        return tuple(sorted(callcentre.KINDS))
    return (calls.KIND,)


def inprocess_runners(database_url: str) -> list[InProcessProjectionRunner]:
    return [InProcessProjectionRunner(app, database_url, PROJECTION_GROUPS)
            for app in event_sources(database_url)]


def http_app(database_url: str, settings: Settings | None = None) -> FastAPI:
    """The HTTP API with the call-centre resources and the service their commands use."""
    app = create_app(database_url, extra_routers=(*CALLCENTRE_ROUTERS, auth_router,
                                                    audit_router, *BROWSER_ROUTERS))
    app.state.callcentre = callcentre_service(database_url)
    app.state.health = health_config(settings or Settings())
    return app


def health_config(settings: Settings) -> HealthConfig:
    """What /healthz expects to be running, and where each projection's events come from."""
    feeders = ("relay", "worker") if settings.kafka_bootstrap else ("projections",)
    return HealthConfig(
        event_stores=(
            EventStore(CallService.name, (topic_for(calls.KIND),)),
            EventStore(CallCentreService.name,
                       tuple(topic_for(kind) for kind in sorted(callcentre.KINDS))),
        ),
        required_services=(*feeders, "routing"),
        stale_after_beats=settings.heartbeat_stale_after,
        stall_after_s=settings.projection_stall_s,
    )
