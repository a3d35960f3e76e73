"""dialtone's own access tokens: what they carry, and every way a bad one is refused."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from application.identity.model import AuthenticationFailed, Role
from application.identity.settings import AuthSettings
from application.identity.tokens import LocalTokens, unverified_issuer

KEY = b"k" * 32
SETTINGS = AuthSettings(access_ttl_s=900)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "u1", "tenant": "acme", "role": "supervisor", "jti": "j", "iat": now,
              "exp": now + 60, "iss": "dialtone", "aud": "dialtone-api"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_an_issued_token_carries_subject_tenant_role_and_the_standard_claims():
    tokens = LocalTokens(KEY, SETTINGS)
    token = tokens.issue("u1", "acme", Role.SUPERVISOR)
    claims = tokens.verify(token)
    assert (claims.subject, claims.tenant, claims.role, claims.external) == (
        "u1", "acme", Role.SUPERVISOR, False)
    raw = jwt.decode(token, KEY, algorithms=["HS256"], audience="dialtone-api")
    assert {"sub", "tenant", "role", "jti", "exp", "iat", "iss", "aud"} <= set(raw)
    assert raw["exp"] - raw["iat"] == 900
    assert unverified_issuer(token) == "dialtone"


@pytest.mark.parametrize(("name", "token"), [
    ("expired", jwt.encode(_claims(exp=int(time.time()) - 60), KEY, algorithm="HS256")),
    ("wrong key", jwt.encode(_claims(), b"x" * 32, algorithm="HS256")),
    ("wrong issuer", jwt.encode(_claims(iss="evil"), KEY, algorithm="HS256")),
    ("wrong audience", jwt.encode(_claims(aud="other"), KEY, algorithm="HS256")),
    ("no tenant", jwt.encode(_claims(tenant=None), KEY, algorithm="HS256")),
    ("no jti", jwt.encode(_claims(jti=None), KEY, algorithm="HS256")),
    ("unknown role", jwt.encode(_claims(role="root"), KEY, algorithm="HS256")),
    ("alg none", jwt.encode(_claims(), "", algorithm="none")),
    ("garbage", "not.a.token"),
])
def test_a_bad_token_is_refused(name, token):
    with pytest.raises(AuthenticationFailed):
        LocalTokens(KEY, SETTINGS).verify(token)


def test_a_tampered_payload_is_refused():
    token = LocalTokens(KEY, SETTINGS).issue("u1", "acme", Role.AGENT)
    header, _payload, signature = token.split(".")
    forged = jwt.encode(_claims(role="admin"), b"?" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthenticationFailed):
        LocalTokens(KEY, SETTINGS).verify(f"{header}.{forged}.{signature}")
