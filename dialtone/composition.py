"""The composition root of the event path: application services, projection
groups and runners, without the HTTP API.

The relay, workers, router, webhooks dispatcher, rebuild, backup and restore
import this module, not dialtone.bootstrap: bootstrap also builds the FastAPI
app, and importing api.app costs about a second of CPU per process start
(FastAPI, pydantic models of every route, the auth stack). An import-linter
contract (pyproject.toml) keeps api out of this module.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from application.callcentre import CallCentreService
from application.calls import CallService
from application.registrations import RegistrationService
from application.router import RoutingProcess
from dialtone.database import eventsourcing_env
from projections import callcentre, calls
from projections.registry import ProjectionGroup
from streams.inprocess import InProcessProjectionRunner
from streams.routing_process import RoutingRunner

# Every projection group the runners and workers apply.
PROJECTION_GROUPS: tuple[ProjectionGroup, ...] = (calls.GROUP, callcentre.GROUP)


def call_service(database_url: str) -> CallService:
    return CallService(env=eventsourcing_env(database_url))


def callcentre_service(database_url: str) -> CallCentreService:
    return CallCentreService(env=eventsourcing_env(database_url))


def kept_stores(database_url: str) -> list[Application[Any]]:
    """Event stores that feed neither Kafka nor the projections (the registrar's
    observations) but are history all the same: backups keep them too."""
    return [RegistrationService(env=eventsourcing_env(database_url))]


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
    # The interval buckets' refresher beside the runner of the events that dirty them.
    return [InProcessProjectionRunner(app, database_url, PROJECTION_GROUPS, refresh=any(
                g.settle is not None and g.kinds & set(relay_kinds(app))
                for g in PROJECTION_GROUPS))
            for app in event_sources(database_url)]
