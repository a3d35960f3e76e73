"""`own_agent_or(permission)`: the gate of the routes an agent may use on itself.

A user of role `agent` is linked to one agent of their tenant (`users.agent_key`,
set by an admin). Their role has `agents:self` only; on an agent route, declared
`dependencies=[own_agent_or(P.AGENTS_WRITE)]` (or inside `audited(...)`), callers
pass

* by permission: a role with `permission` (supervisors, admins) reaches any agent;
* by ownership: a role with `agents:self` reaches the agent whose key is its own,
  and any other key answers 404 (as a missing agent: an agent cannot learn which
  keys exist);

and every other role gets 403. The OpenAPI document lists the two as alternative
security requirements (`[{bearer: [permission]}, {bearer: ["agents:self"]}]`),
so a walk of the document knows either one lets a role in.

`own_calls_or(permission)` is the same gate for the call reads (calls in progress,
one call, its timeline, CDRs): callers with `permission` read every call of their
tenant; agent users read the calls whose `agents` name their own agent (the ones
they handle or handled), and any other call answers 404 (as a missing one). The
route narrows its query with `CallScope` (`only_agent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security

from api.auth.dependencies import (
    Auth,
    Principal,
    RequestId,
    Requirement,
    admitted,
    authenticate,
    bearer,
    forbidden,
)
from api.auth.permissions import Permission
from api.db import Pool
from api.problems import NotFoundProblem

SELF = Permission.AGENTS_SELF
KEY_PARAM = "key"  # the path parameter naming the agent (`/v1/agents/{key}/...`)


class PermissionOrSelf(Requirement):
    """`permission`, or `agents:self` narrowed by `narrow` to the caller's own agent."""

    @property
    def alternatives(self) -> tuple[Permission, ...]:
        return (self.permission, SELF)

    async def __call__(self, request: Request, pool: Pool, auth: Auth, rid: RequestId,
                       token: Annotated[str | None, Depends(bearer)]) -> Principal:
        principal = await authenticate(pool, auth, rid, token)
        if not principal.can(self.permission):
            if not principal.can(SELF):
                raise forbidden(principal, self.permission)
            self.narrow(request, principal)
        return admitted(request, principal)

    def narrow(self, request: Request, principal: Principal) -> None:
        raise NotImplementedError


class OwnAgent(PermissionOrSelf):
    """`permission`, or `agents:self` on the caller's own agent (path parameter `key`)."""

    def narrow(self, request: Request, principal: Principal) -> None:
        key = str(request.path_params.get(KEY_PARAM, ""))
        if principal.agent_key is None or key != principal.agent_key:
            raise NotFoundProblem("agent", key)  # not 403: another agent's key does not leak


def own_agent_or(permission: Permission) -> Any:
    """The dependency of an agent route: callers with `permission` reach any agent,
    agent users only their own (404 for any other key). See the module's docstring."""
    return Security(OwnAgent(permission), scopes=[permission.value, SELF.value])


class OwnCalls(PermissionOrSelf):
    """`permission`, or `agents:self` narrowed to the calls of the caller's own agent."""

    def narrow(self, request: Request, principal: Principal) -> None:
        # An agent user not linked to an agent (or an agent-role key) handled no
        # call: "" names none, since an agent's key is never empty.
        request.state.only_agent = principal.agent_key or ""


def own_calls_or(permission: Permission) -> Any:
    """The dependency of a call read: callers with `permission` read every call of
    their tenant, agent users only their own agent's (see the module's docstring)."""
    return Security(OwnCalls(permission), scopes=[permission.value, SELF.value])


@dataclass(frozen=True)
class CallScope:
    """Which calls a request may read: its tenant's, and when `only_agent` is set,
    only those whose agents include that key."""

    tenant: str
    only_agent: str | None = None


async def call_scope(request: Request) -> CallScope:
    """The scope `own_calls_or` left on the request (route dependencies run first)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise RuntimeError(f"{request.url.path}: call_scope before own_calls_or()")
    return CallScope(principal.tenant, getattr(request.state, "only_agent", None))


Scope = Annotated[CallScope, Depends(call_scope)]


def split_alternatives(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the security of each operation gated by `own_agent_or` as alternatives.

    FastAPI merges every scope of one scheme into a single requirement (all of
    them needed), while the gate needs either one. `agents:self` is declared
    only by `own_agent_or`, always next to another permission: a requirement
    naming it with others is such a gate's, and becomes one requirement each."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            split: list[dict[str, list[str]]] = []
            for requirement in operation.get("security", []):
                for name, scopes in requirement.items():
                    if SELF.value in scopes and len(scopes) > 1:
                        split.extend({name: [scope]} for scope in scopes)
                    else:
                        split.append({name: scopes})
            if split:
                operation["security"] = split
    return schema
