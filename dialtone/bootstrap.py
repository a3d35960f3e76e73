"""The composition root: builds the application services, projection groups and runners."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from application.calls import CallService
from dialtone.database import eventsourcing_env
from projections import calls
from projections.registry import ProjectionGroup
from streams.inprocess import InProcessProjectionRunner

# Every projection group the runners and workers apply.
PROJECTION_GROUPS: tuple[ProjectionGroup, ...] = (calls.GROUP,)


def call_service(database_url: str) -> CallService:
    return CallService(env=eventsourcing_env(database_url))


def event_sources(database_url: str) -> list[Application[Any]]:
    """The applications whose notification logs feed Kafka and the projections."""
    return [call_service(database_url)]


def inprocess_runners(database_url: str) -> list[InProcessProjectionRunner]:
    return [InProcessProjectionRunner(app, database_url, PROJECTION_GROUPS)
            for app in event_sources(database_url)]
