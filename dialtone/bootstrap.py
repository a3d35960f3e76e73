"""The composition root: builds the application services and runners from settings."""

from __future__ import annotations

from application.calls import CallService
from dialtone.database import eventsourcing_env


def call_service(database_url: str) -> CallService:
    return CallService(env=eventsourcing_env(database_url))
