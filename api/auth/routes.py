"""`/v1/auth`: log in (OAuth 2.0 password flow), refresh, and the tenant's
users and API keys (admin). Everything an admin does here stays in their tenant."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.auth.audit import record_done
from api.auth.dependencies import (
    PUBLIC,
    TOO_MANY_TYPE,
    Auth,
    Principal,
    RequestId,
    require,
    unauthenticated,
)
from api.auth.permissions import Permission
from api.auth.schemas import (
    AgentSet,
    DeviceSet,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeysPublic,
    RefreshRequest,
    TokenPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
)
from api.db import Pool, acquire
from api.problems import NotFoundProblem, ProblemError, problem_responses
from api.schemas.text import NUL_FREE
from application.identity import service, store
from application.identity.model import AuthenticationFailed, Conflict, LockedOut

TAG = {"name": "auth", "description": "Log in, refresh tokens, and manage the tenant's "
       "users and API keys."}
router = APIRouter(prefix="/v1/auth", tags=["auth"])

UsersAdmin = Annotated[Principal, require(Permission.USERS_ADMIN)]
KeysAdmin = Annotated[Principal, require(Permission.KEYS_ADMIN)]
_AUTH_ERRORS = problem_responses(401, 403)
# Any name PostgreSQL text can hold: `dialtone users add` takes names the API's
# create would refuse, and an admin must still reach them.
Username = Annotated[str, Path(pattern=NUL_FREE, max_length=200,
                               description="The person's username.")]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$",
                            description="The key's id: `key_id` when it was created.")]


@router.post("/token", response_model=TokenPublic, openapi_extra=PUBLIC,
             responses=problem_responses(401, 422, 429))
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], pool: Pool, auth: Auth,
                rid: RequestId) -> TokenPublic:
    """Log in with username and password (form body); get an access and a refresh token."""
    try:
        user = await service.login(lambda: acquire(pool), form.username, form.password,
                                   auth.settings, rid)
    except LockedOut as exc:
        raise ProblemError(429, "Too many failed logins for this username; retry later.",
                           type_=TOO_MANY_TYPE,
                           headers={"Retry-After": str(exc.retry_after_s)}) from None
    except AuthenticationFailed:
        raise unauthenticated("Incorrect username or password.") from None
    async with acquire(pool) as conn:
        refresh = await service.issue_refresh(conn, user.id, auth.settings)
    access = (await auth.local_tokens(pool)).issue(str(user.id), user.tenant, user.role)
    return TokenPublic(access_token=access, expires_in=auth.settings.access_ttl_s,
                       refresh_token=refresh)


@router.post("/refresh", response_model=TokenPublic, openapi_extra=PUBLIC,
             responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, pool: Pool, auth: Auth, rid: RequestId) -> TokenPublic:
    """Trade a refresh token (once) for a new access token and the next refresh token."""
    async with acquire(pool) as conn:
        try:
            renewed = await service.refresh(conn, body.refresh_token, auth.settings, rid)
        except AuthenticationFailed:
            raise unauthenticated("Invalid refresh token.") from None
    access = (await auth.local_tokens(pool)).issue(str(renewed.user_id), renewed.tenant,
                                                   renewed.role)
    return TokenPublic(access_token=access, expires_in=auth.settings.access_ttl_s,
                       refresh_token=renewed.refresh_token)


@router.get("/users", response_model=UsersPublic, responses=_AUTH_ERRORS)
async def list_users(principal: UsersAdmin, pool: Pool) -> UsersPublic:
    """The people of the caller's tenant."""
    async with acquire(pool) as conn:
        users = await store.list_users(conn, principal.tenant)
    return UsersPublic(data=[UserPublic(**asdict(u)) for u in users], count=len(users))


@router.post("/users", status_code=201, response_model=UserPublic,
             responses=problem_responses(401, 403, 409, 422))
async def add_user(body: UserCreate, principal: UsersAdmin, pool: Pool,
                   rid: RequestId) -> UserPublic:
    """Add a person to the caller's tenant."""
    async with acquire(pool) as conn:
        try:
            user = await service.add_user(conn, principal.tenant, body.username, body.role,
                                          body.password)
        except Conflict:
            raise ProblemError(409, f"Username {body.username} is taken.") from None
        if body.device is not None:
            await store.set_user_device(conn, body.username, principal.tenant, body.device)
            user = replace(user, device=body.device)
        if body.agent is not None:
            await store.set_user_agent(conn, body.username, principal.tenant, body.agent)
            user = replace(user, agent=body.agent)
        await record_done(conn, principal, rid, "users.add", {"username": body.username})
    return UserPublic(**asdict(user))


@router.put("/users/{username}/device", status_code=204,
            responses=problem_responses(401, 403, 404, 422))
async def set_device(username: Username, body: DeviceSet, principal: UsersAdmin, pool: Pool,
                     rid: RequestId) -> Response:
    """Set (or clear, with null) a person's own device: the SIP URI their monitor,
    whisper and barge ring. A supervision request never names a device itself."""
    async with acquire(pool) as conn:
        if not await store.set_user_device(conn, username, principal.tenant, body.device):
            raise NotFoundProblem("user", username)
        await record_done(conn, principal, rid, "users.device",
                     {"username": username, "device": body.device})
    return Response(status_code=204)


@router.put("/users/{username}/agent", status_code=204,
            responses=problem_responses(401, 403, 404, 422))
async def set_agent(username: Username, body: AgentSet, principal: UsersAdmin, pool: Pool,
                    auth: Auth, rid: RequestId) -> Response:
    """Make a person the agent `agent` (its key, in the caller's tenant), or no agent
    (null). A user of role agent reads and acts on that agent only."""
    async with acquire(pool) as conn:
        if not await store.set_user_agent(conn, username, principal.tenant, body.agent):
            raise NotFoundProblem("user", username)
        record = await store.login_record(conn, username)
        await record_done(conn, principal, rid, "users.agent",
                     {"username": username, "agent": body.agent})
    if record is not None:
        auth.forget_user(record[0].id)  # this process sees the new link at once
    return Response(status_code=204)


@router.post("/users/{username}/disable", status_code=204,
             responses=problem_responses(401, 403, 404, 422))
async def disable_user(username: Username, principal: UsersAdmin, pool: Pool, auth: Auth,
                       rid: RequestId) -> Response:
    """Disable a person: their tokens stop working within seconds, refresh tokens at once."""
    async with acquire(pool) as conn:
        if not await store.set_user_disabled(conn, username, principal.tenant, disabled=True):
            raise NotFoundProblem("user", username)
        record = await store.login_record(conn, username)
        await record_done(conn, principal, rid, "users.disable", {"username": username})
    if record is not None:
        auth.forget_user(record[0].id)
    return Response(status_code=204)


@router.get("/keys", response_model=KeysPublic, responses=_AUTH_ERRORS)
async def list_keys(principal: KeysAdmin, pool: Pool) -> KeysPublic:
    """The API keys of the caller's tenant (never their secrets)."""
    async with acquire(pool) as conn:
        keys = await store.list_keys(conn, principal.tenant)
    return KeysPublic(data=[KeyPublic(**asdict(k)) for k in keys], count=len(keys))


@router.post("/keys", status_code=201, response_model=KeyCreated,
             responses=problem_responses(401, 403, 422))
async def create_key(body: KeyCreate, principal: KeysAdmin, pool: Pool,
                     rid: RequestId) -> KeyCreated:
    """Make an API key for a service account of the caller's tenant; the key is shown once."""
    async with acquire(pool) as conn:
        new = await service.create_api_key(conn, principal.tenant, body.account, body.role,
                                           body.expires_at)
        await record_done(conn, principal, rid, "keys.create",
                     {"key_id": new.key_id, "account": body.account})
    return KeyCreated(key_id=new.key_id, key=new.key, account=new.account.name,
                      role=new.account.role, expires_at=new.expires_at)


@router.delete("/keys/{key_id}", status_code=204,
               responses=problem_responses(401, 403, 404, 422))
async def revoke_key(key_id: KeyId, principal: KeysAdmin, pool: Pool, auth: Auth,
                     rid: RequestId) -> Response:
    """Revoke a key of the caller's tenant; it stops working within seconds."""
    async with acquire(pool) as conn:
        if not await store.revoke_key(conn, key_id, principal.tenant):
            raise NotFoundProblem("key", key_id)
        await record_done(conn, principal, rid, "keys.revoke", {"key_id": key_id})
    auth.forget_key(key_id)
    return Response(status_code=204)
