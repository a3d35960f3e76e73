"""Signed access tokens: dialtone's own (HS256, PyJWT) and, when an OIDC issuer
is configured, the issuer's (keys from its JWKS, cached by PyJWKClient).

Which verifier applies is chosen from the unverified `iss` claim, but each
verifier then pins its own algorithms, key, issuer and audience, so a token
cannot pick how it is checked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from application.identity.model import AuthenticationFailed, Role
from application.identity.settings import AuthSettings

LOCAL_ALGORITHM = "HS256"
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_LEEWAY_S = 5


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says about its bearer."""

    subject: str
    tenant: str
    role: Role
    external: bool  # signed by the OIDC issuer: its account state is the issuer's business


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise AuthenticationFailed("token carries no known role") from None


class LocalTokens:
    """Issues and verifies dialtone's own access tokens."""

    def __init__(self, key: bytes, settings: AuthSettings) -> None:
        self._key = key
        self._settings = settings

    def issue(self, subject: str, tenant: str, role: Role) -> str:
        now = int(time.time())
        claims = {"sub": subject, "tenant": tenant, "role": role.value,
                  "jti": uuid.uuid4().hex, "iat": now, "exp": now + self._settings.access_ttl_s,
                  "iss": self._settings.issuer, "aud": self._settings.audience}
        return jwt.encode(claims, self._key, algorithm=LOCAL_ALGORITHM)

    def verify(self, token: str) -> TokenClaims:
        claims = _decode(token, self._key, [LOCAL_ALGORITHM], self._settings.issuer,
                         self._settings.audience, ("sub", "tenant", "role", "jti"))
        return TokenClaims(str(claims["sub"]), str(claims["tenant"]), _role(claims["role"]),
                           external=False)


class OidcTokens:
    """Verifies tokens of an external OIDC issuer with keys from its JWKS."""

    def __init__(self, settings: AuthSettings) -> None:
        if not (settings.oidc_issuer and settings.oidc_jwks_url):
            raise ValueError("OIDC needs DIALTONE_AUTH_OIDC_ISSUER and DIALTONE_AUTH_OIDC_JWKS_URL")
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True,
                                     lifespan=settings.oidc_jwks_cache_s, timeout=5)

    def verify(self, token: str) -> TokenClaims:
        """Blocking on a JWKS cache miss (an HTTP fetch): call it off the event loop."""
        settings = self._settings
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("no signing key for this token") from exc
        claims = _decode(token, key, OIDC_ALGORITHMS, settings.oidc_issuer,
                         settings.oidc_audience or settings.audience,
                         ("sub", settings.oidc_role_claim, settings.oidc_tenant_claim))
        return TokenClaims(str(claims["sub"]), str(claims[settings.oidc_tenant_claim]),
                           _role(claims[settings.oidc_role_claim]), external=True)


def _decode(token: str, key: Any, algorithms: list[str], issuer: str | None, audience: str,
            required: tuple[str, ...]) -> Mapping[str, Any]:
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, issuer=issuer, audience=audience,
            leeway=_LEEWAY_S, options={"require": ["exp", "iat", "iss", "aud", *required]})
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("invalid token") from exc
    return claims


def unverified_issuer(token: str) -> str | None:
    """The `iss` a token claims, read without checking it (only to pick a verifier)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
