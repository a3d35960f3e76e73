"""Turns a bearer credential into who is calling: an API key, dialtone's own
access token, or (when configured) an OIDC issuer's token.

Per request, a token is checked in-process (signature, expiry) and the
account's state (disabled? role?) comes from a per-process cache that asks
the database again after `state_ttl_s` (5 s by default): a disabled account or
a revoked key is refused within that time, even inside its token's lifetime,
without a query on every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar
from uuid import UUID

import asyncpg
from starlette.concurrency import run_in_threadpool

from api.db import acquire
from application.identity import store
from application.identity.credentials import API_KEY_PREFIX, digest_matches, parse_secret
from application.identity.model import ActorState, AuthenticationFailed, Role
from application.identity.settings import AuthSettings
from application.identity.tokens import LocalTokens, OidcTokens, unverified_issuer

K = TypeVar("K")
V = TypeVar("V")
_CACHE_LIMIT = 10_000


class TtlCache(Generic[K, V]):
    """Values fetched at most once per `ttl_s` per key; cleared whole when it grows
    past a bound (a flood of unknown keys cannot grow it without limit)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, fetch: Callable[[K], Awaitable[V]]) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = await fetch(key)
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[key] = (now + self._ttl_s, value)
        return value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)


@dataclass(frozen=True)
class Identity:
    """Who a credential belongs to."""

    actor_id: str
    kind: Literal["user", "key"]
    tenant: str
    role: Role
    agent_key: str | None = None  # a user's own agent; keys and OIDC users have none


class Authenticator:
    """One per app: the settings, the signing key, the OIDC client and the caches."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._local: LocalTokens | None = None
        self._local_lock = asyncio.Lock()
        self._oidc = OidcTokens(settings) if settings.oidc_issuer else None
        self._users: TtlCache[UUID, ActorState | None] = TtlCache(settings.state_ttl_s)
        self._keys: TtlCache[str, store.KeyRecord | None] = TtlCache(settings.state_ttl_s)

    async def local_tokens(self, pool: asyncpg.Pool) -> LocalTokens:
        """dialtone's token signer; its key comes from the settings or the database."""
        if self._local is None:
            async with self._local_lock:
                if self._local is None:
                    self._local = LocalTokens(await self._signing_key(pool), self.settings)
        return self._local

    async def _signing_key(self, pool: asyncpg.Pool) -> bytes:
        if self.settings.signing_key is not None:
            return self.settings.signing_key.get_secret_value().encode()
        async with acquire(pool) as conn:
            return await store.signing_key(conn)

    async def authenticate(self, pool: asyncpg.Pool, credential: str) -> Identity:
        """The identity behind `credential`; AuthenticationFailed when there is none."""
        if credential.startswith(f"{API_KEY_PREFIX}_"):
            return await self._key(pool, credential)
        if self._oidc is not None and unverified_issuer(credential) == self.settings.oidc_issuer:
            claims = await run_in_threadpool(self._oidc.verify, credential)  # JWKS may be fetched
            return Identity(claims.subject, "user", claims.tenant, claims.role)
        claims = (await self.local_tokens(pool)).verify(credential)
        state = await self._user_state(pool, claims.subject)
        if state is None or not state.active or state.tenant != claims.tenant:
            raise AuthenticationFailed("account disabled or gone")
        return Identity(claims.subject, "user", state.tenant, state.role, state.agent_key)

    async def _user_state(self, pool: asyncpg.Pool, subject: str) -> ActorState | None:
        try:
            user_id = UUID(subject)
        except ValueError:
            return None

        async def fetch(key: UUID) -> ActorState | None:
            async with acquire(pool) as conn:
                return await store.user_state(conn, key)

        return await self._users.get(user_id, fetch)

    async def _key(self, pool: asyncpg.Pool, credential: str) -> Identity:
        parsed = parse_secret(credential, API_KEY_PREFIX)
        if parsed is None:
            raise AuthenticationFailed("malformed key")

        async def fetch(key_id: str) -> store.KeyRecord | None:
            async with acquire(pool) as conn:
                return await store.key_record(conn, key_id)

        record = await self._keys.get(parsed.id, fetch)
        if record is None or not digest_matches(parsed.secret, record.digest):
            raise AuthenticationFailed("unknown key")
        if not record.state.active:
            raise AuthenticationFailed("key revoked or expired")
        return Identity(parsed.id, "key", record.state.tenant, record.state.role)

    def forget_user(self, user_id: UUID) -> None:
        """Drop this process's cached view of a user it just changed."""
        self._users.forget(user_id)

    def forget_key(self, key_id: str) -> None:
        self._keys.forget(key_id)
