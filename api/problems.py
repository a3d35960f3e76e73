"""RFC 9457 problem details: the one shape every error of the API takes.

Routers raise `ProblemError` (or a helper such as `NotFoundProblem`, `invalid`) and
declare what they may answer with `problem_responses(404, 422)`; the handlers
installed by `install_problem_handlers` turn HTTP errors, validation errors,
an unreachable database and unexpected exceptions into
`application/problem+json` bodies. A 500 never carries the exception text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem type URIs: `about:blank` for plain HTTP errors (RFC 9457 section 4.2.1),
# a `urn:dialtone:problem:*` name for the kinds a client may act on.
NOT_FOUND_TYPE = "urn:dialtone:problem:not-found"
VALIDATION_TYPE = "urn:dialtone:problem:validation"
UNAVAILABLE_TYPE = "urn:dialtone:problem:database-unavailable"
INTERNAL_TYPE = "urn:dialtone:problem:internal"
RETRY_AFTER_S = 5
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
PATH_PARAMETER = re.compile(r"\\\{[^/]+?\\\}")  # `{name}` in a re.escape()d path template


class FieldError(BaseModel):
    """Why one input was refused."""

    field: str = Field(description="Dotted name of the input, e.g. `from` or `limit`.")
    location: str = Field(description="Where the input was: query, path, header or body.")
    message: str = Field(description="What is wrong with it, for a human.")
    type: str = Field(description="Machine-readable reason, e.g. `missing`, `enum`.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(default="about:blank", description="URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    instance: str | None = Field(default=None, description="The request path that failed.")


class ValidationProblem(Problem):
    """A request whose inputs were refused; `errors` names each one and why."""

    errors: list[FieldError]


class ProblemError(HTTPException):
    """An HTTP error that renders as a problem with its own type URI."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.type = type_


class NotFoundProblem(ProblemError):  # noqa: N818 - reads as the answer it gives
    def __init__(self, what: str, key: object) -> None:
        super().__init__(404, f"{what} {key} not found", type_=NOT_FOUND_TYPE)


class DatabaseUnavailable(Exception):  # noqa: N818 - reads as the state it reports
    """The database could not be reached; the request may succeed later."""


def invalid(field: str, message: str, *, location: str = "query") -> RequestValidationError:
    """A validation error for a rule FastAPI cannot check by itself (e.g. from <= to)."""
    return RequestValidationError(
        [{"loc": (location, field), "msg": message, "type": "value_error"}]
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": ValidationProblem if status == 422 else Problem,
            "description": HTTPStatus(status).phrase,
        }
        if status == 503:
            response["headers"] = {"Retry-After": {
                "description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
        responses[status] = response
    return responses


def problem_response(
    request: Request, problem: Problem, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    problem.instance = request.url.path
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers) if headers else None,
    )


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FieldErrors from pydantic/FastAPI error dicts (loc = (location, *path))."""
    return [
        FieldError(
            location=str(error["loc"][0]) if error["loc"] else "request",
            field=".".join(str(part) for part in error["loc"][1:]),
            message=str(error["msg"]),
            type=str(error["type"]),
        )
        for error in errors
    ]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    problem = Problem(type=getattr(exc, "type", "about:blank"), title=status.phrase,
                      status=status, detail=str(exc.detail))
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(request, problem, headers)


def _allowed_methods(request: Request) -> str:
    """The methods the OpenAPI document lists for this path. Starlette's own 405
    names only the methods of the first route matching the path, though GET,
    PATCH and DELETE of one resource are separate routes."""
    path = request.scope["path"]
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(PATH_PARAMETER.sub("[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in item if method in HTTP_METHODS}
    return ", ".join(sorted(methods))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{e.location} parameter `{e.field}`: {e.message}" for e in errors)
    problem = ValidationProblem(type=VALIDATION_TYPE, title="Invalid request", status=422,
                                detail=detail, errors=errors)
    return problem_response(request, problem)


async def _database_unavailable(request: Request, _exc: Exception) -> JSONResponse:
    problem = Problem(type=UNAVAILABLE_TYPE, title="Database unavailable", status=503,
                      detail="The database cannot be reached right now; retry shortly.")
    return problem_response(request, problem, {"Retry-After": str(RETRY_AFTER_S)})


async def _unexpected_error(request: Request, _exc: Exception) -> JSONResponse:
    # The exception text may hold SQL or data: it goes to the server log (the
    # ASGI server logs what ServerErrorMiddleware re-raises), never to the client.
    problem = Problem(type=INTERNAL_TYPE, title="Internal Server Error", status=500,
                      detail="An unexpected error occurred; it has been logged.")
    return problem_response(request, problem)


def install_problem_handlers(
    app: FastAPI, unavailable: Iterable[type[Exception]] = ()
) -> None:
    """Render every error as a problem; `unavailable` are the exception types
    that mean "the database is gone right now" (answered 503 + Retry-After)."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    unavailable_types: list[type[Exception]] = [DatabaseUnavailable, *unavailable]
    for exc_type in unavailable_types:
        app.add_exception_handler(exc_type, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
