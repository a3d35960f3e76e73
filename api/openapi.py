"""The OpenAPI document, corrected to say what the API really answers.

FastAPI files every response model under the route's media type
(application/json) and documents its own 422 body (HTTPValidationError) on
routes with parameters. The API serves every error as
application/problem+json, and some errors can happen on any route: so, once,
when the document is first generated,

* every 4xx/5xx response is moved to `application/problem+json`;
* every operation documents 422 as a `ValidationProblem` (an unknown query
  parameter is refused on every route);
* every operation that needs a credential documents 401 and 403;
* every operation with a body documents 400 (a body that is not UTF-8 JSON)
  and 413 (a body over the size bound);
* every create (201) links to the operations on what it created (`api.links`).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.auth.ownership import split_alternatives
from api.links import add_links
from api.problems import PROBLEM_MEDIA_TYPE

METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
FASTAPI_DEFAULTS = ("HTTPValidationError", "ValidationError")


def _problem(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in METHODS:
                _correct(operation)
    components = schema.get("components", {}).get("schemas", {})
    for name in FASTAPI_DEFAULTS:
        components.pop(name, None)
    return schema


def _correct(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status, response in responses.items():
        content = response.get("content", {})
        if status[0] in "45" and "application/json" in content:
            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    responses["422"] = _problem(HTTPStatus(422).phrase, "ValidationProblem")
    if operation.get("security"):  # `require(...)`: no or bad credential, or a role without it
        responses["401"] = _problem("Missing or invalid credentials", "Problem")
        responses["403"] = _problem("The caller's role lacks the permission", "Problem")
    if "requestBody" in operation:
        responses["400"] = _problem("The body is not UTF-8 JSON", "Problem")
        responses["413"] = _problem("The body is over 1 MiB", "Problem")
    operation["responses"] = dict(sorted(responses.items()))


def openapi_factory(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(problem_media_types(split_alternatives(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes, tags=app.openapi_tags,
            ))))
        return app.openapi_schema

    return openapi
