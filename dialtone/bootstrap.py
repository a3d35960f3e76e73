"""The composition root: the event path's services and runners (dialtone.composition,
re-exported here) and the HTTP API built on them. Processes without the API import
dialtone.composition instead, which does not pull FastAPI."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.auth.audit_routes import router as audit_router
from api.auth.routes import router as auth_router
from api.auth.sip_routes import router as sip_router
from api.health import EventStore, HealthConfig
from api.pages import BROWSER_ROUTERS
from api.routes import CALLCENTRE_ROUTERS
from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.composition import (
    PROJECTION_GROUPS,
    call_service,
    callcentre_service,
    event_sources,
    inprocess_runners,
    relay_kinds,
    routing_runner,
)
from dialtone.settings import Settings
from projections import callcentre, calls
from streams.topics import topic_for

__all__ = ["PROJECTION_GROUPS", "call_service", "callcentre_service", "event_sources",
           "health_config", "http_app", "inprocess_runners", "relay_kinds", "routing_runner"]


def http_app(database_url: str, settings: Settings | None = None) -> FastAPI:
    """The HTTP API with the call-centre resources and the service their commands use."""
    app = create_app(database_url, extra_routers=(*CALLCENTRE_ROUTERS, auth_router,
                                                    sip_router, audit_router,
                                                    *BROWSER_ROUTERS))
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
        forget_after_s=settings.heartbeat_forget_s,
        stall_after_s=settings.projection_stall_s,
    )
