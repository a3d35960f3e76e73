"""The identity use cases: log in, rotate a refresh token, make users and keys.

Each takes a connection and plain values; the API routes and the CLI call
them. Every login and refresh, failed too, leaves a line in the audit log.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

import asyncpg

from application.identity import store
from application.identity.credentials import (
    API_KEY_PREFIX,
    REFRESH_PREFIX,
    OpaqueSecret,
    digest_matches,
    hash_password,
    new_secret,
    parse_secret,
    verify_password,
)
from application.identity.model import (
    MIN_PASSWORD_LENGTH,
    AuthenticationFailed,
    LockedOut,
    Role,
    ServiceAccount,
    User,
    WeakPassword,
    check_name,
)
from application.identity.settings import AuthSettings
from application.identity.store import AuditEntry

_AUDITED_NAME = 64  # characters of the attempted username a login's audit row keeps
MAX_NAME_LENGTH = 200  # the API's username limit (api/auth/routes.py, Username)

Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
"""Hands out a pooled connection (the API's `acquire(pool)`)."""


async def login(connect: Connect, username: str, password: str, settings: AuthSettings,
                request_id: str) -> User:
    """The user whose password this is; AuthenticationFailed or LockedOut otherwise.

    An unknown username costs one argon2 verification too (against a dummy
    hash) and counts towards a lockout like a known one, so neither the answer
    nor its time tells whether the user exists. The attempt is counted before
    argon2 runs, in one statement, so parallel guesses get no more than the
    quota verified; a success takes its count back. No connection is held while
    argon2 works (tens of ms of CPU), so logins cannot starve the pool."""
    if not storable_name(username):
        return await _refuse_impossible_name(connect, username, password, request_id)
    async with connect() as conn:
        locked = await store.count_attempt(conn, username, settings)
        if locked > 0:
            await _audit_login(conn, request_id, None, "locked", username)
            raise LockedOut(math.ceil(locked))
        record = await store.login_record(conn, username)
    user, stored_hash = record if record else (None, None)
    matches = await asyncio.to_thread(verify_password, stored_hash, password)
    async with connect() as conn:
        if user is None or not matches or user.disabled:
            await _audit_login(conn, request_id, user, "denied", username)
            raise AuthenticationFailed("incorrect username or password")
        await store.clear_failures(conn, username)
        await _audit_login(conn, request_id, user, "ok", username)
    return user


async def _refuse_impossible_name(connect: Connect, username: str, password: str,
                                  request_id: str) -> NoReturn:
    """A name no user can have (`storable_name`): refused as an unknown one, after the
    same argon2 time, without counting it (an 8 kB name fits no index, a NUL no text)."""
    await asyncio.to_thread(verify_password, None, password)
    async with connect() as conn:
        await _audit_login(conn, request_id, None, "denied", username)
    raise AuthenticationFailed("incorrect username or password")


def storable_name(username: str) -> bool:
    """Whether a user could have this name: no NUL (PostgreSQL text holds none) and at
    most MAX_NAME_LENGTH characters (what an index row holds). Not NAME_PATTERN: users
    `dialtone users add` made before the identity layer checked it still log in."""
    return "\x00" not in username and 0 < len(username) <= MAX_NAME_LENGTH


def _shown(username: str) -> str:
    """The username as the audit row keeps it: bounded, and text jsonb can hold."""
    name = username.replace("\x00", "\ufffd")
    return name if len(name) <= _AUDITED_NAME else name[:_AUDITED_NAME] + "\u2026"


async def _audit_login(conn: asyncpg.Connection, request_id: str, user: User | None,
                       outcome: str, username: str) -> None:
    await store.record_audit(conn, AuditEntry(
        action="auth.login", outcome=outcome, request_id=request_id,
        actor=str(user.id) if user else None, actor_kind="user" if user else "anonymous",
        tenant=user.tenant if user else None, detail={"username": _shown(username)}))


async def issue_refresh(conn: asyncpg.Connection, user_id: uuid.UUID, settings: AuthSettings,
                        parent: store.RefreshUse | None = None) -> str:
    """A new refresh token for the user: of a new family for a fresh login, or the next of
    `parent`'s family. A family ends `refresh_ttl_s` after its login, whatever it renews:
    refreshing never stretches a session."""
    secret = new_secret(REFRESH_PREFIX)
    await store.insert_refresh(conn, secret.id, user_id,
                               parent.family if parent else uuid.uuid4(), secret.digest,
                               parent.expires_at if parent else None, settings.refresh_ttl_s)
    return secret.text


@dataclass(frozen=True)
class Refreshed:
    user_id: uuid.UUID
    tenant: str
    role: Role
    refresh_token: str


async def refresh(conn: asyncpg.Connection, token: str, settings: AuthSettings,
                  request_id: str) -> Refreshed:
    """Trade a refresh token for the next one of its family.

    A token presented a second time means it leaked (or the client replayed it):
    its whole family is revoked, so both holders must log in again. Only a token
    whose secret matches is marked used: knowing a token's id (not a secret) lets
    nobody burn it. Every refusal is audited, an unknown or forged token too."""
    parsed = parse_secret(token, REFRESH_PREFIX)
    async with conn.transaction():  # the token's row stays locked from its check to its use
        renewed = await _rotate(conn, parsed, settings, request_id)
    if renewed is None:
        raise AuthenticationFailed("invalid refresh token")
    return renewed


async def _rotate(conn: asyncpg.Connection, parsed: OpaqueSecret | None, settings: AuthSettings,
                  request_id: str) -> Refreshed | None:
    """The next token of `parsed`'s family, or None (refused); audited either way."""
    use = await store.lock_refresh(conn, parsed.id) if parsed else None
    if parsed is None or use is None or not digest_matches(parsed.secret, use.digest):
        await _audit_refresh(conn, request_id, "denied", None, None)
        return None
    await store.mark_refresh_used(conn, parsed.id)
    state = await store.user_state(conn, use.user_id)
    outcome = "ok"
    if not use.first_use:
        await store.revoke_family(conn, use.family)
        outcome = "replayed"
    elif not use.valid or state is None or not state.active:
        outcome = "denied"
    await _audit_refresh(conn, request_id, outcome, use.user_id, state.tenant if state else None)
    if outcome != "ok" or state is None:
        return None
    new_token = await issue_refresh(conn, use.user_id, settings, use)
    return Refreshed(use.user_id, state.tenant, state.role, new_token)


async def _audit_refresh(conn: asyncpg.Connection, request_id: str, outcome: str,
                         user_id: uuid.UUID | None, tenant: str | None) -> None:
    await store.record_audit(conn, AuditEntry(
        action="auth.refresh", outcome=outcome, request_id=request_id,
        actor=str(user_id) if user_id else None, actor_kind="user" if user_id else "anonymous",
        tenant=tenant))


async def log_out(conn: asyncpg.Connection, token: str, request_id: str) -> bool:
    """End the session `token` (a refresh token) belongs to: its whole family is
    revoked, so no copy of it renews anything; audited as `auth.logout`. False when
    the token is none of ours (nothing to end)."""
    parsed = parse_secret(token, REFRESH_PREFIX)
    async with conn.transaction():
        held = await store.lock_refresh(conn, parsed.id) if parsed else None
        if parsed is None or held is None or not digest_matches(parsed.secret, held.digest):
            return False
        state = await store.user_state(conn, held.user_id)
        await store.revoke_family(conn, held.family)
        await store.record_audit(conn, AuditEntry(
            action="auth.logout", outcome="ok", request_id=request_id,
            actor=str(held.user_id), actor_kind="user", tenant=state.tenant if state else None))
    return True


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


async def add_user(conn: asyncpg.Connection, tenant: str, username: str, role: Role,
                   password: str) -> User:
    check_name(username, "username")
    check_password(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        await store.ensure_tenant(conn, tenant)
        return await store.create_user(conn, tenant, username, role, password_hash)


async def change_password(conn: asyncpg.Connection, username: str, tenant: str | None,
                          password: str) -> bool:
    check_password(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    return await store.set_password(conn, username, tenant, password_hash)


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: `key` is shown once and kept nowhere."""

    key_id: str
    key: str
    account: ServiceAccount
    expires_at: datetime | None


async def create_api_key(conn: asyncpg.Connection, tenant: str, account_name: str, role: Role,
                         expires_at: datetime | None = None) -> NewApiKey:
    """A key for the service account `account_name` (made with `role` if new)."""
    check_name(account_name, "service account name")
    secret = new_secret(API_KEY_PREFIX)
    async with conn.transaction():
        await store.ensure_tenant(conn, tenant)
        account = await store.ensure_service_account(conn, tenant, account_name, role)
        await store.insert_api_key(conn, account.id, secret.id, secret.digest, expires_at)
    return NewApiKey(secret.id, secret.text, account, expires_at)
