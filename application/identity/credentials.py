"""Password hashes (argon2id) and opaque secrets (API keys, refresh tokens).

An opaque secret reads `<prefix>_<id>_<secret>`: the id is not secret and finds
the stored row; the secret carries 256 bits from `secrets`, so a single SHA-256
of it is enough to store (no slow hash needed for high-entropy secrets, as
for GitHub's or Stripe's keys). Comparisons go through `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the RFC 9106 low-memory profile
# Verified against when the username is unknown, so a failed login costs the same
# whether or not the user exists.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

API_KEY_PREFIX = "dtk"
REFRESH_PREFIX = "dtr"
_ID_BYTES = 9
_SECRET_BYTES = 32


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, burn the same time and say no."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def random_password() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class OpaqueSecret:
    """A secret handed out once: `text` goes to the client, `digest` to the database."""

    prefix: str
    id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{self.prefix}_{self.id}_{self.secret}"

    @property
    def digest(self) -> bytes:
        return secret_digest(self.secret)


def new_secret(prefix: str) -> OpaqueSecret:
    # token_hex keeps `_` out of the id, so the text splits unambiguously.
    return OpaqueSecret(prefix, secrets.token_hex(_ID_BYTES), secrets.token_urlsafe(_SECRET_BYTES))


# What new_secret writes: a hex id, then base64url; anything else (a NUL, which no
# PostgreSQL text can hold, among them) is not a secret of ours, and is never looked up.
_ID = re.compile(r"[0-9a-f]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def parse_secret(text: str, prefix: str) -> OpaqueSecret | None:
    """The parts of `text` when it has the shape of a `prefix` secret, else None."""
    head, sep, rest = text.partition("_")
    key_id, sep2, secret = rest.partition("_")
    if head != prefix or not sep or not sep2:
        return None
    if not _ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return OpaqueSecret(prefix, key_id, secret)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def digest_matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored)
