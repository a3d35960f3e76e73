"""The OpenAPI document is complete, and every error is a problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.problems import problem_responses
from api.routes import ROUTERS
from tests.integration.api_support import PROBLEM, assert_problem, running_api

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

PROBLEM_REFS = {"#/components/schemas/Problem", "#/components/schemas/ValidationProblem",
                "#/components/schemas/HealthProblem"}  # a Problem with the health report
SECRET = "password=hunter2 in SELECT * FROM secrets"

boom = APIRouter(prefix="/v1/boom", tags=["boom"])


@boom.get("", summary="Fail unexpectedly", responses=problem_responses())
async def explode() -> dict[str, str]:
    raise RuntimeError(SECRET)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with running_api(database_url, extra_routers=(boom,), raise_errors=False) as client:
        yield client


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_openapi_lists_every_route_of_the_app(document):
    routes = {(r.path, method.lower()) for router in (*ROUTERS, boom) for r in router.routes
              if isinstance(r, APIRoute) for method in r.methods or ()}
    listed = {(path, method) for path, method, _ in operations(document)}
    assert routes == listed
    assert {("/healthz", "get"), ("/v1/calls", "get"), ("/v1/calls/{call_id}", "get"),
            ("/v1/calls/{call_id}/timeline", "get"), ("/v1/cdrs", "get")} <= listed


def test_every_operation_has_a_summary_a_tag_and_a_typed_success(document):
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert operation.get("tags"), where
        if path == "/metrics":  # Prometheus' text format, for the scraper (docs/observability.md)
            assert list(operation["responses"]["200"]["content"]) == ["text/plain"]
            continue
        if path.startswith("/v1/exports/"):  # files, CSV or Parquet (docs/exports.md)
            assert set(operation["responses"]["200"]["content"]) == {
                "text/csv", "application/vnd.apache.parquet"}, where
            continue
        if path == "/v1/calls/{call_id}/recording":  # the WAV, or a redirect (docs/recordings.md)
            assert list(operation["responses"]["200"]["content"]) == ["audio/wav"], where
            assert "307" in operation["responses"], where
            continue
        # The operation's success: 200, or 201 (created) / 204 (no content) for commands.
        status = min(s for s in operation["responses"] if s.startswith("2"))
        if status == "204":
            assert "content" not in operation["responses"][status], where
            continue
        success = operation["responses"][status]["content"]["application/json"]["schema"]
        assert success.get("$ref") or success.get("type") == "object", where


def test_every_error_response_is_a_documented_problem(document):
    for path, method, operation in operations(document):
        errors = {status: r for status, r in operation["responses"].items() if status >= "400"}
        assert {"500", "503"} <= set(errors), f"{method} {path}"
        if operation.get("parameters"):
            assert "422" in errors, f"{method} {path}"
        for status, response in errors.items():
            assert list(response["content"]) == [PROBLEM], f"{method} {path} {status}"
            assert response["content"][PROBLEM]["schema"]["$ref"] in PROBLEM_REFS
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "FieldError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's default 422 body is never served


def test_cdrs_document_csv_and_the_public_schemas(document):
    cdrs = document["paths"]["/v1/cdrs"]["get"]
    assert set(cdrs["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    params = {p["name"] for p in cdrs["parameters"]}
    assert {"from", "to", "caller", "callee", "disposition", "direction", "cursor",
            "limit"} <= params
    schemas = document["components"]["schemas"]
    assert {"CallPublic", "CallsPublic", "CdrPublic", "CdrsPublic"} <= set(schemas)
    assert set(schemas["Disposition"]["enum"]) == {"answered", "busy", "no-answer", "failed",
                                                   "cancelled", "abandoned"}


def test_unexpected_error_is_a_500_problem_that_leaks_nothing(client):
    response = client.get("/v1/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["instance"] == "/v1/boom"


def test_unknown_path_is_a_not_found_problem(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_a_problem_that_keeps_the_allow_header(client):
    response = client.post("/v1/calls")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_secured_operations_document_401_and_403(document):
    for path, method, operation in operations(document):
        documented = {"401", "403"} <= set(operation["responses"])
        assert documented == bool(operation.get("security")), f"{method} {path}"
    # Either permission is enough: an agent user reads their own CDRs.
    assert document["paths"]["/v1/cdrs"]["get"]["security"] == [
        {"OAuth2PasswordBearer": ["history:read"]},
        {"OAuth2PasswordBearer": ["agents:self"]}]
    assert document["paths"]["/healthz"]["get"]["x-public"] is True


def test_the_auth_and_audit_tags_are_described(document):
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert tags["auth"]
    assert tags["audit"]
