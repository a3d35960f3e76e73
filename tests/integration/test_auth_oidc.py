"""Tokens of an external OIDC issuer: a key pair the test makes, its JWKS
served on loopback by the test, claims mapped to role and tenant."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.utils import base64url_encode

from tests.integration.auth_support import auth_api, bearer

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

ISSUER = "https://idp.example.test/realms/callcentre"
AUDIENCE = "dialtone"
KID = "test-key-1"


class Jwks:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is fetched."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.fetches = 0
        body = json.dumps(document).encode()
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Jwks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


PRIVATE = _private_key()
IMPOSTOR = _private_key()


def _jwks_document() -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PRIVATE.public_key()))
    return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}


def _token(key: Any = PRIVATE, algorithm: str = "RS256", kid: str = KID,
           **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "idp-user-42", "iss": ISSUER, "aud": AUDIENCE, "iat": now,
              "exp": now + 300, "dialtone_role": "admin", "org": "acme"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def client(database_url: str) -> Iterator[tuple[TestClient, Jwks]]:
    with Jwks(_jwks_document()) as jwks, auth_api(
            database_url, oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks_url=jwks.url,
            oidc_role_claim="dialtone_role", oidc_tenant_claim="org") as api:
        yield api, jwks


def test_a_token_of_the_issuer_is_accepted_with_its_role_and_tenant(client):
    api, jwks = client
    for _ in range(3):
        answer = api.get("/v1/auth/users", headers=bearer(_token()))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"data": [], "count": 0}  # tenant acme has no local users
    assert jwks.fetches == 1  # the keys are cached


def test_the_mapped_role_decides_what_the_token_opens(client):
    api, _ = client
    supervisor = _token(dialtone_role="supervisor")
    assert api.get("/v1/auth/users", headers=bearer(supervisor)).status_code == 403


def _public_pem() -> bytes:
    return PRIVATE.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("token", [
    pytest.param(lambda: _token(key=IMPOSTOR), id="signed by another key"),
    pytest.param(lambda: _token(key=IMPOSTOR, kid="unknown"), id="unknown kid"),
    pytest.param(lambda: _token(aud="someone-else"), id="wrong audience"),
    pytest.param(lambda: _token(exp=int(time.time()) - 60), id="expired"),
    pytest.param(lambda: _token(iss="https://evil.example.test"), id="wrong issuer"),
    pytest.param(lambda: _token(dialtone_role="root"), id="unknown role"),
    pytest.param(lambda: _token(org=None), id="no tenant claim"),
    pytest.param(lambda: _token(dialtone_role=None), id="no role claim"),
])
def test_a_bad_issuer_token_gets_401(client, token):
    api, _ = client
    answer = api.get("/v1/auth/users", headers=bearer(token()))
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"


def test_the_issuer_public_key_used_as_an_hmac_secret_is_refused(client):
    """Algorithm confusion: HS256 signed with the public key the JWKS publishes."""
    api, _ = client
    now = int(time.time())
    claims = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60,
              "dialtone_role": "admin", "org": "acme"}
    # PyJWT refuses to sign this, so the attacker's token is put together by hand.
    signing_input = b".".join(base64url_encode(json.dumps(part).encode()) for part in (
        {"alg": "HS256", "typ": "JWT", "kid": KID}, claims))
    signature = hmac.new(_public_pem(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64url_encode(signature)).decode()
    assert api.get("/v1/auth/users", headers=bearer(forged)).status_code == 401
