"""`require(permission)`: the dependency every route declares, and `Principal`,
what it hands the route.

Without a credential, or with a bad one, it answers 401 problem+json with
`WWW-Authenticate: Bearer`; with a role that lacks the permission, 403. The
same 401 body serves every failure, so it never tells which part was wrong.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from api.auth.authenticator import Authenticator
from api.auth.cookies import BearerOrSessionCookie  # or the browser's session cookie
from api.auth.permissions import Permission, allows
from api.db import Pool
from api.problems import ProblemError
from application import log_context
from application.identity.model import AuthenticationFailed, Role
from application.identity.settings import AuthSettings

UNAUTHENTICATED_TYPE = "urn:dialtone:problem:unauthenticated"
FORBIDDEN_TYPE = "urn:dialtone:problem:forbidden"
TOO_MANY_TYPE = "urn:dialtone:problem:too-many-attempts"
LOGIN_PATH = "/v1/auth/token"
# The OpenAPI security scheme (Swagger's "Authorize" logs in with the password
# flow); it reads `Authorization: Bearer <token or API key>`.
# Each permission is an OAuth2 scope of the scheme, so an operation's permission
# shows in the document as its security requirement's scope.
bearer = BearerOrSessionCookie(tokenUrl=LOGIN_PATH, auto_error=False,
                              scopes={p.value: f"Permission {p.value}" for p in Permission})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    actor_id: str  # a user id (or OIDC subject), or an API key id
    kind: Literal["user", "key"]
    tenant: str
    role: Role
    request_id: str
    agent_key: str | None = None  # the agent a user of role agent is (`own_agent_or`)

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def unauthenticated(detail: str = "Missing or invalid credentials.") -> ProblemError:
    return ProblemError(401, detail, type_=UNAUTHENTICATED_TYPE,
                        headers={"WWW-Authenticate": "Bearer"})


async def get_authenticator(request: Request) -> Authenticator:
    """The app's authenticator: set on `app.state.auth` by the composition root,
    or built from the environment on first use."""
    auth: Authenticator | None = getattr(request.app.state, "auth", None)
    if auth is None:
        auth = request.app.state.auth = Authenticator(AuthSettings())
    return auth


async def request_id(request: Request) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new one; kept on
    `request.state` so the audit and the events of this request share it."""
    existing: str | None = getattr(request.state, "request_id", None)
    if existing is None:  # set by RequestIdMiddleware when the app has it
        existing = request.state.request_id = new_request_id(request.headers)
    return existing


def new_request_id(headers: Headers) -> str:
    """The caller's X-Request-ID when it is 1-64 characters of `[A-Za-z0-9._:-]`,
    else a new one (a caller cannot inject text into the audit or the logs)."""
    offered = headers.get("x-request-id", "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


Auth = Annotated[Authenticator, Depends(get_authenticator)]
RequestId = Annotated[str, Depends(request_id)]


async def authenticate(pool: Pool, auth: Auth, rid: str, token: str | None) -> Principal:
    """The caller behind `token`; 401 when there is none (whatever was wrong)."""
    if not token:
        raise unauthenticated()
    try:
        identity = await auth.authenticate(pool, token)
    except AuthenticationFailed:
        raise unauthenticated() from None
    return Principal(identity.actor_id, identity.kind, identity.tenant, identity.role, rid,
                     identity.agent_key)


def forbidden(principal: Principal, permission: Permission) -> ProblemError:
    return ProblemError(403, f"Role {principal.role.value} lacks permission "
                        f"{permission.value}.", type_=FORBIDDEN_TYPE)


class Requirement:
    """The dependency `require(permission)` returns; routes are walked for it."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request, pool: Pool, auth: Auth, rid: RequestId,
                       token: Annotated[str | None, Depends(bearer)]) -> Principal:
        principal = await authenticate(pool, auth, rid, token)
        if not principal.can(self.permission):
            raise forbidden(principal, self.permission)
        return admitted(request, principal)


def admitted(request: Request, principal: Principal) -> Principal:
    """What every gate does once it lets a caller in."""
    request.state.principal = principal  # for `caller_tenant`, whatever asks later
    log_context.bind(tenant=principal.tenant)  # on this request's log lines from here
    return principal


def require(permission: Permission) -> Any:
    """The dependency that lets in only callers whose role has `permission` and
    hands the route their `Principal`; declare it next to the route:
    `dependencies=[require(Permission.CALLS_READ)]` or
    `principal: Annotated[Principal, require(Permission.CALLS_READ)]`.

    It is a `Security` dependency with the permission as its scope, so the
    OpenAPI document lists the permission in each operation's `security`."""
    return Security(Requirement(permission), scopes=[permission.value])


def caller_tenant(request: Request) -> str:
    """The tenant of the request's authenticated caller: every query filters on it
    and every command acts in it. Declared by routes after their `require`/`audited`
    (route `dependencies` run first), which put the principal on the request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route asking for a tenant without requiring a permission
        raise RuntimeError(f"{request.url.path}: caller_tenant before require()")
    return principal.tenant


async def _caller_tenant(request: Request) -> str:
    return caller_tenant(request)  # on the loop: a `def` dependency would hop to a thread


Tenant = Annotated[str, Depends(_caller_tenant)]


PUBLIC: dict[str, Any] = {"x-public": True}
"""`openapi_extra=PUBLIC` marks the few routes that take no credential (login,
refresh, health) so a walk of the document can tell them from forgotten ones."""


def _requirements(dependant: Dependant) -> list[Permission]:
    found = [d.call.permission for d in dependant.dependencies if isinstance(d.call, Requirement)]
    for sub in dependant.dependencies:
        found.extend(_requirements(sub))
    return found


def declared_permissions(route: APIRoute) -> list[Permission]:
    """The permissions a route requires (through `require`, at any depth)."""
    return _requirements(route.dependant)


def operation_permissions(operation: dict[str, Any]) -> set[str]:
    """The permissions an OpenAPI operation declares (its security scopes)."""
    return {scope for requirement in operation.get("security", [])
            for scopes in requirement.values() for scope in scopes}


def operation_alternatives(operation: dict[str, Any]) -> list[set[str]]:
    """The permission sets an OpenAPI operation accepts, one per security
    requirement (alternatives, in OpenAPI): a caller holding all of one set gets
    past the check (`own_agent_or` routes have two)."""
    return [{scope for scopes in requirement.values() for scope in scopes}
            for requirement in operation.get("security", [])]
