"""The browser's credential: the access token in an HttpOnly, SameSite=Strict cookie.

A page cannot keep a bearer token out of reach of its own scripts, and an
EventSource cannot send an Authorization header; the cookie does both. The API
reads it only when no bearer header came, through the same OAuth2 scheme object
every route already declares (`bearer` in api/auth/dependencies.py is a
`BearerOrSessionCookie`), so every route takes either, with the same checks.

CSRF. SameSite=Strict already keeps other sites' requests from carrying the
cookie; on top of it (older browsers, same-site subdomains) a request that
changes something (not GET/HEAD/OPTIONS) and authenticates by the cookie must
repeat the value of the `dialtone_csrf` cookie in an `X-CSRF-Token` header
(double submit): a page of another origin can neither read that cookie nor set
the header without a CORS preflight the API never grants.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request, Response
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from api.problems import ProblemError

SESSION_COOKIE = "dialtone_session"
REFRESH_COOKIE = "dialtone_refresh"
CSRF_COOKIE = "dialtone_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_PATH = "/v1/auth/session"  # the refresh cookie goes there only
CSRF_TYPE = "urn:dialtone:problem:csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_credential(request: HTTPConnection) -> str | None:
    """The access token of the session cookie, if any; 403 for a change without the
    CSRF header that matches the CSRF cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.scope.get("method", "GET") not in SAFE_METHODS:
        check_csrf(request)
    return token


def check_csrf(request: HTTPConnection) -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    offered = request.headers.get(CSRF_HEADER, "")
    if not (expected and secrets.compare_digest(expected.encode(), offered.encode())):
        raise ProblemError(403, f"A change made with the session cookie needs the "
                           f"{CSRF_HEADER} header (the value of the {CSRF_COOKIE} cookie).",
                           type_=CSRF_TYPE)


class BearerOrSessionCookie(OAuth2PasswordBearer):
    """`Authorization: Bearer` as before (and in the OpenAPI document); else the
    session cookie."""

    def __init__(self, **kwargs: Any) -> None:
        # The OpenAPI document keeps naming the scheme as before (clients and tests do).
        super().__init__(scheme_name="OAuth2PasswordBearer", **kwargs)

    async def __call__(self, request: HTTPConnection) -> str | None:
        token = await super().__call__(request)
        return token or session_credential(request)


def set_session(response: Response, request: Request, access: str, access_ttl_s: int,
                refresh: str, refresh_ttl_s: int) -> str:
    """Put a new session on `response`; returns its CSRF token (also a cookie the
    page's script reads)."""
    secure = request.url.scheme == "https"
    csrf = secrets.token_urlsafe(32)
    common = {"secure": secure, "samesite": "strict"}
    response.set_cookie(SESSION_COOKIE, access, max_age=access_ttl_s, path="/", httponly=True,
                        **common)  # type: ignore[arg-type]  # literal values
    response.set_cookie(REFRESH_COOKIE, refresh, max_age=refresh_ttl_s, path=SESSION_PATH,
                        httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, max_age=refresh_ttl_s, path="/", httponly=False,
                        **common)  # type: ignore[arg-type]
    return csrf


def clear_session(response: Response) -> None:
    for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, SESSION_PATH), (CSRF_COOKIE, "/")):
        response.delete_cookie(name, path=path, httponly=name != CSRF_COOKIE, samesite="strict")
