"""`/v1/auth/session`: the browser's login, refresh and logout (cookies, api/auth/cookies.py).

The same login as `POST /v1/auth/token` (it calls it: lockout, audit and
refresh tokens are that route's), answered with cookies instead of tokens in
the body, so the page's scripts never hold a token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.auth import routes
from api.auth.cookies import REFRESH_COOKIE, check_csrf, clear_session, set_session
from api.auth.dependencies import PUBLIC, Auth, RequestId, unauthenticated
from api.auth.schemas import RefreshRequest, TokenPublic
from api.db import Pool, acquire
from api.problems import problem_responses
from application.identity import service

router = APIRouter(prefix="/v1/auth/session", tags=["auth"])


class SessionPublic(BaseModel):
    expires_in: int = Field(description="Seconds the access cookie lasts; refresh before.")
    csrf_token: str = Field(description=(
        "Send it as `X-CSRF-Token` with every change made with the cookie (it is also "
        "the `dialtone_csrf` cookie)."))


def _session(request: Request, response: Response, tokens: TokenPublic,
             auth: Auth) -> SessionPublic:
    csrf = set_session(response, request, tokens.access_token, tokens.expires_in,
                       tokens.refresh_token, auth.settings.refresh_ttl_s)
    return SessionPublic(expires_in=tokens.expires_in, csrf_token=csrf)


@router.post("", openapi_extra=PUBLIC, responses=problem_responses(401, 422, 429))
async def log_in(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request,
                 response: Response, pool: Pool, auth: Auth, rid: RequestId) -> SessionPublic:
    """Log in with username and password (form body); the session is in HttpOnly,
    SameSite=Strict cookies the API accepts instead of a bearer token."""
    return _session(request, response, await routes.token(form, pool, auth, rid), auth)


@router.post("/refresh", openapi_extra=PUBLIC, responses=problem_responses(401, 403))
async def refresh(request: Request, response: Response, pool: Pool, auth: Auth,
                  rid: RequestId) -> SessionPublic:
    """Renew the session's cookies with its refresh cookie (needs `X-CSRF-Token`)."""
    check_csrf(request)  # first: a request from elsewhere learns nothing, not even 401
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise unauthenticated("No session to refresh.")
    tokens = await routes.refresh(RefreshRequest(refresh_token=token), pool, auth, rid)
    return _session(request, response, tokens, auth)


@router.delete("", status_code=204, openapi_extra=PUBLIC)
async def log_out(request: Request, pool: Pool, rid: RequestId) -> Response:
    """End the browser's session: its refresh token is revoked (a copy of the cookie
    renews nothing) and its cookies are cleared. The access cookie, like any access
    token, lasts out its few minutes."""
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        async with acquire(pool) as conn:
            await service.log_out(conn, token, rid)
    response = Response(status_code=204)
    clear_session(response)
    return response
