"""GET /healthz, and how the API behaves while its database is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations
from dialtone.services.postgres import EmbeddedPostgres, free_port
from tests.integration.api_support import assert_problem, running_api


def test_health_is_ok_when_the_database_answers(database_url):
    with running_api(database_url) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def restartable(
    pg_server: EmbeddedPostgres | None, database_url: str, tmp_path: Path
) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A server this test may stop and start, and a database on it. The shared
    session server when the tests run on it (it is running again afterwards);
    with DATABASE_URL set, an embedded server of the test's own."""
    if pg_server is not None:
        try:
            yield pg_server, database_url
        finally:
            pg_server.start()
        return
    own = EmbeddedPostgres(tmp_path / "pg", free_port())
    own.start()
    try:
        dsn = own.dsn("api_health")
        ensure_database(dsn)
        yield own, dsn
    finally:
        own.destroy()


def test_api_answers_503_while_the_database_is_down_and_recovers_by_itself(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        assert client.get("/healthz").status_code == 200

        server.stop()
        for path in ("/healthz", "/v1/calls"):
            body = assert_problem(client.get(path), 503)
            assert body["title"] == "Database unavailable"
            assert "Connection refused" not in body["detail"]  # no internals leak
        assert client.get("/healthz").headers["retry-after"] == "5"

        server.start()
        response = client.get("/healthz")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "database": "ok"}
        assert client.get("/v1/calls").json() == {"data": [], "count": 0}


def test_api_answers_503_when_the_server_dies_under_an_open_connection(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        assert client.get("/healthz").status_code == 200  # a pooled connection now exists
        server.kill()
        assert_problem(client.get("/healthz"), 503)
        server.start()
        assert client.get("/healthz").status_code == 200


def test_api_starts_while_the_database_is_down_and_serves_once_it_is_up(restartable):
    server, dsn = restartable
    apply_migrations(dsn)
    server.stop()
    app = create_app(dsn)
    with TestClient(app) as client:
        assert_problem(client.get("/v1/cdrs"), 503)
        server.start()
        assert client.get("/v1/cdrs").json() == {"data": [], "count": 0, "next_cursor": None}


def test_invalid_request_is_refused_as_invalid_even_while_the_database_is_down(restartable):
    server, dsn = restartable
    with running_api(dsn) as client:
        server.stop()
        body = assert_problem(client.get("/v1/cdrs", params={"limit": "0"}), 422)
        assert body["errors"][0]["field"] == "limit"
        assert_problem(client.get("/v1/calls/not-a-uuid"), 422)
        assert_problem(client.get("/v1/cdrs", headers={"Accept": "text/csv"}), 503)
