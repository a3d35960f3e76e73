"""Helpers for the call-centre API tests: the real app with the call-centre
routers and a CallCentreService on a migrated database, and the in-process
projection runner to bring the read side up to date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from api.routes import CALLCENTRE_ROUTERS
from application.callcentre import CallCentreService
from dialtone.database import eventsourcing_env
from projections import callcentre
from streams.inprocess import InProcessProjectionRunner
from tests.integration.api_support import assert_problem, running_api


@dataclass
class Api:
    client: TestClient
    service: CallCentreService
    runner: InProcessProjectionRunner

    def project(self) -> None:
        self.runner.catch_up()

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    def problem(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        return assert_problem(self.client.request(method, path, **kwargs), status)


@contextmanager
def open_api(database_url: str) -> Iterator[Api]:
    with CallCentreService(env=eventsourcing_env(database_url)) as service, \
            running_api(database_url, extra_routers=CALLCENTRE_ROUTERS) as client:
        client.app.state.callcentre = service  # type: ignore[attr-defined]
        yield Api(client, service, InProcessProjectionRunner(service, database_url,
                                                             [callcentre.GROUP]))


def alice(api: Api, **extra: Any) -> dict[str, Any]:
    body = {"key": "alice", "name": "Alice Example", "skills": {"english": 80}, **extra}
    return api.ok("POST", "/v1/agents", 201, json=body)


def sales(api: Api, **extra: Any) -> dict[str, Any]:
    return api.ok("POST", "/v1/queues", 201, json={"key": "sales", "name": "Sales", **extra})
