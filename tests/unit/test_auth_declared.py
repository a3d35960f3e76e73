"""Each operation declares its permission next to the route, and the OpenAPI
document can be walked for it (what the wiring slice's walk of every route uses)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from api.auth.dependencies import (
    Principal,
    declared_permissions,
    operation_permissions,
    require,
)
from api.auth.permissions import Permission
from api.auth.routes import router as auth_router

probe = APIRouter(prefix="/v1/probe")
Supervisor = Annotated[Principal, require(Permission.SUPERVISION_ACT)]


def nested(principal: Annotated[Principal, require(Permission.CALLS_READ)]) -> str:
    return principal.actor_id


@probe.get("/marked", dependencies=[require(Permission.CONFIG_READ)])
async def marked() -> dict[str, str]:
    return {}


@probe.post("/param")
async def param(principal: Supervisor) -> dict[str, str]:
    return {"actor": principal.actor_id}


@probe.get("/nested")
async def deep(actor: Annotated[str, Depends(nested)]) -> dict[str, str]:
    return {"actor": actor}


@probe.get("/forgotten")
async def forgotten() -> dict[str, str]:
    return {}


def _document(*routers: APIRouter) -> dict[str, Any]:
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    return app.openapi()


def test_a_permission_is_found_however_the_route_declares_it():
    by_path = {r.path: declared_permissions(r) for r in probe.routes if isinstance(r, APIRoute)}
    assert by_path == {"/v1/probe/marked": [Permission.CONFIG_READ],
                       "/v1/probe/param": [Permission.SUPERVISION_ACT],
                       "/v1/probe/nested": [Permission.CALLS_READ],
                       "/v1/probe/forgotten": []}


def test_the_document_names_each_operation_permission_and_a_forgotten_one_shows():
    document = _document(probe)
    marks = {path: operation_permissions(op) for path, item in document["paths"].items()
             for op in item.values()}
    assert marks == {"/v1/probe/marked": {"config:read"}, "/v1/probe/param": {"supervision:act"},
                     "/v1/probe/nested": {"calls:read"}, "/v1/probe/forgotten": set()}
    assert document["paths"]["/v1/probe/marked"]["get"]["security"] == [
        {"OAuth2PasswordBearer": ["config:read"]}]


def test_every_auth_operation_is_public_or_declares_a_permission():
    document = _document(auth_router)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("x-public") or operation_permissions(operation), (method, path)
    public = {path for path, item in document["paths"].items()
              for op in item.values() if op.get("x-public")}
    assert public == {"/v1/auth/token", "/v1/auth/refresh"}
