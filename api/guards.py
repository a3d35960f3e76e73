"""Request guards every route shares: the body size bound and unknown query
parameters refused.

A query parameter the route does not declare is refused with 422 rather than
ignored: `/v1/queues/sales/live?at=...` answering "now" would let a caller
believe the answer describes another moment.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE, Problem

# The largest request body accepted (1 MiB): the largest legitimate body, a
# dialplan of 1,000 rules, is about 300 KiB. Beyond it: 413, counted on
# Content-Length and on the bytes actually received (chunked bodies).
MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = f"the request body is over {MAX_BODY_BYTES} bytes"


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


class BodyLimit:
    """ASGI middleware bounding request bodies to ``max_bytes``.

    A declared Content-Length over the bound is answered 413 before the app
    runs. Otherwise the bytes received are counted as the app reads them, and
    the read that crosses the bound raises ``BodyTooLarge`` (an HTTP error the
    app renders as a 413 problem). Starlette's own limiter is not used: it
    replaces any response to an over-long Content-Length with plain text.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted, send)


def _too_large(path: str) -> JSONResponse:
    problem = Problem(title="Content Too Large", status=413, detail=TOO_LARGE, instance=path)
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=413,
                        media_type=PROBLEM_MEDIA_TYPE, headers={"Connection": "close"})


def declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameter names (aliases) the route and its dependencies declare."""
    names: set[str] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(param.alias for param in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)


async def known_query_only(request: Request) -> None:
    """A dependency for every route: 422 naming each undeclared query parameter."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - declared_query(route))
    if unknown:
        raise RequestValidationError([
            {"loc": ("query", name), "msg": "unknown query parameter", "type": "extra_forbidden"}
            for name in unknown
        ])
