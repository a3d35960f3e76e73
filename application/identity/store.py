"""The identity tables (migrations/schema/0005_identities.sql), over asyncpg.

Plain functions taking a connection, so the API (pooled connections) and the
CLI (one connection under `asyncio.run`) share them. Secrets arrive here
already hashed; nothing here logs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from application.identity.model import (
    ActorState,
    ApiKeyInfo,
    Conflict,
    Role,
    ServiceAccount,
    User,
    check_tenant_id,
)
from application.identity.settings import AuthSettings

_SIGNING_KEY_BYTES = 32


# --- tenants and users -------------------------------------------------------------------

async def ensure_tenant(conn: asyncpg.Connection, tenant: str, name: str | None = None) -> None:
    """Make the tenant if it is new. InvalidName for an id the domain would refuse (its
    aggregates would all be refused): the one place a tenant is made, so the one check."""
    check_tenant_id(tenant)
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       tenant, name or tenant)


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["tenant"], row["username"], Role(row["role"]),
                row["disabled_at"] is not None, row["created_at"], row["device"], row["agent_key"])


_USER_COLUMNS = "id, tenant, username, role, disabled_at, created_at, device, agent_key"


async def create_user(conn: asyncpg.Connection, tenant: str, username: str, role: Role,
                      password_hash: str) -> User:
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (id, tenant, username, role, password_hash) "  # noqa: S608 - constant columns
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}",
            uuid4(), tenant, username, role.value, password_hash)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"username {username!r} is taken") from None
    assert row is not None
    return _user(row)


async def list_users(conn: asyncpg.Connection, tenant: str | None) -> list[User]:
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM users "  # noqa: S608 - constant columns
        "WHERE $1::text IS NULL OR tenant = $1 ORDER BY tenant, username", tenant)
    return [_user(row) for row in rows]


async def login_record(conn: asyncpg.Connection, username: str) -> tuple[User, str] | None:
    """The user and their password hash, for a login."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users "  # noqa: S608 - constant columns
        "WHERE username = $1", username)
    return (_user(row), row["password_hash"]) if row else None


async def set_user_disabled(conn: asyncpg.Connection, username: str, tenant: str | None,
                            disabled: bool) -> bool:
    async with conn.transaction():
        found = await _update_user(
            conn, username, tenant,
            "disabled_at = CASE WHEN $3 THEN coalesce(disabled_at, now()) END", disabled)
        if found and disabled:  # a disabled user's sessions end with it
            await _revoke_refresh_tokens(conn, username, tenant)
    return found


async def _revoke_refresh_tokens(conn: asyncpg.Connection, username: str,
                                tenant: str | None) -> None:
    """End every session of the user `username` of `tenant` (None: of any tenant, for
    the command line); a user of another tenant is left alone, whatever their name."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() FROM users "
        "WHERE users.id = refresh_tokens.user_id AND users.username = $1 "
        "AND ($2::text IS NULL OR users.tenant = $2) AND refresh_tokens.revoked_at IS NULL",
        username, tenant)


async def set_password(conn: asyncpg.Connection, username: str, tenant: str | None,
                       password_hash: str) -> bool:
    """A new password ends the user's sessions: a refresh token taken with the old one
    (by whoever learnt it) renews nothing."""
    async with conn.transaction():
        found = await _update_user(conn, username, tenant,
                                   "password_hash = $3, password_changed_at = now()",
                                   password_hash)
        if found:
            await _revoke_refresh_tokens(conn, username, tenant)
    return found


async def set_user_device(conn: asyncpg.Connection, username: str, tenant: str | None,
                          device: str | None) -> bool:
    """Give a user their own device (a SIP URI), or take it away (None)."""
    return await _update_user(conn, username, tenant, "device = $3", device)


async def set_user_agent(conn: asyncpg.Connection, username: str, tenant: str | None,
                         agent_key: str | None) -> bool:
    """Make a user the agent `agent_key` of their tenant (None: no agent). The key
    need not exist yet (an agent may be provisioned after its person); a key
    that never exists gives its user nothing but 404s."""
    return await _update_user(conn, username, tenant, "agent_key = $3", agent_key)


async def _update_user(conn: asyncpg.Connection, username: str, tenant: str | None,
                       assignments: str, value: object) -> bool:
    """Apply `assignments` ($3 is `value`) to the user `username` (of `tenant`, or of
    any tenant when None: usernames are unique across tenants); False when no such user."""
    status = await conn.execute(
        f"UPDATE users SET {assignments} "  # noqa: S608 - assignments are constants of this module
        "WHERE username = $1 AND ($2::text IS NULL OR tenant = $2)", username, tenant, value)
    return str(status) != "UPDATE 0"


async def user_by_id(conn: asyncpg.Connection, user_id: UUID, tenant: str) -> User | None:
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users "  # noqa: S608 - constant columns
        "WHERE id = $1 AND tenant = $2", user_id, tenant)
    return _user(row) if row else None


async def user_state(conn: asyncpg.Connection, user_id: UUID) -> ActorState | None:
    row = await conn.fetchrow(
        "SELECT tenant, role, disabled_at, agent_key FROM users WHERE id = $1", user_id)
    if row is None:
        return None
    return ActorState(row["tenant"], Role(row["role"]), row["disabled_at"] is None,
                      row["agent_key"])


# --- service accounts and API keys -------------------------------------------------------

async def ensure_service_account(conn: asyncpg.Connection, tenant: str, name: str,
                                 role: Role) -> ServiceAccount:
    """The account `name` of `tenant`, created with `role` if it does not exist."""
    row = await conn.fetchrow(
        "INSERT INTO service_accounts (id, tenant, name, role) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant, name) DO UPDATE SET name = EXCLUDED.name "
        "RETURNING id, tenant, name, role, disabled_at", uuid4(), tenant, name, role.value)
    assert row is not None
    return ServiceAccount(row["id"], row["tenant"], row["name"], Role(row["role"]),
                          row["disabled_at"] is not None)


async def insert_api_key(conn: asyncpg.Connection, account_id: UUID, key_id: str,
                         digest: bytes, expires_at: datetime | None) -> None:
    await conn.execute("INSERT INTO api_keys (key_id, account_id, secret_hash, expires_at) "
                       "VALUES ($1, $2, $3, $4)", key_id, account_id, digest, expires_at)


@dataclass(frozen=True)
class KeyRecord:
    digest: bytes
    state: ActorState


async def key_record(conn: asyncpg.Connection, key_id: str) -> KeyRecord | None:
    """The key's hash and whether it may act now (not revoked, not expired, account enabled)."""
    row = await conn.fetchrow(
        "SELECT k.secret_hash, a.tenant, a.role, "
        "k.revoked_at IS NULL AND a.disabled_at IS NULL "
        "AND (k.expires_at IS NULL OR k.expires_at > now()) AS active "
        "FROM api_keys k JOIN service_accounts a ON a.id = k.account_id WHERE k.key_id = $1",
        key_id)
    if row is None:
        return None
    return KeyRecord(bytes(row["secret_hash"]),
                     ActorState(row["tenant"], Role(row["role"]), row["active"]))


async def list_keys(conn: asyncpg.Connection, tenant: str | None) -> list[ApiKeyInfo]:
    rows = await conn.fetch(
        "SELECT k.key_id, a.name, a.tenant, a.role, k.created_at, k.expires_at, k.revoked_at "
        "FROM api_keys k JOIN service_accounts a ON a.id = k.account_id "
        "WHERE $1::text IS NULL OR a.tenant = $1 ORDER BY a.tenant, k.created_at", tenant)
    return [ApiKeyInfo(r["key_id"], r["name"], r["tenant"], Role(r["role"]), r["created_at"],
                       r["expires_at"], r["revoked_at"] is not None) for r in rows]


async def revoke_key(conn: asyncpg.Connection, key_id: str, tenant: str | None) -> bool:
    status = await conn.execute(
        "UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now()) "
        "FROM service_accounts a WHERE a.id = k.account_id AND k.key_id = $1 "
        "AND ($2::text IS NULL OR a.tenant = $2)", key_id, tenant)
    return str(status) != "UPDATE 0"


# --- refresh tokens ----------------------------------------------------------------------

async def insert_refresh(conn: asyncpg.Connection, token_id: str, user_id: UUID, family: UUID,
                         digest: bytes, expires_at: datetime | None, ttl_s: int) -> None:
    """A refresh token ending at `expires_at` (its family's end), or in `ttl_s` when None."""
    await conn.execute(
        "INSERT INTO refresh_tokens (token_id, user_id, family, secret_hash, expires_at) "
        "VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now() + make_interval(secs => $6)))",
        token_id, user_id, family, digest, expires_at, float(ttl_s))


@dataclass(frozen=True)
class RefreshUse:
    """A refresh token just presented: `first_use` is False for a replay."""

    user_id: UUID
    family: UUID
    digest: bytes
    first_use: bool
    valid: bool  # not expired, not revoked
    expires_at: datetime


async def lock_refresh(conn: asyncpg.Connection, token_id: str) -> RefreshUse | None:
    """The token, its row locked until the caller's transaction ends, so that checking
    its secret and marking it used (`mark_refresh_used`) are one step."""
    row = await conn.fetchrow(
        "SELECT user_id, family, secret_hash, used_at IS NULL AS first_use, "
        "revoked_at IS NULL AND expires_at > now() AS valid, expires_at "
        "FROM refresh_tokens WHERE token_id = $1 FOR UPDATE", token_id)
    if row is None:
        return None
    return RefreshUse(row["user_id"], row["family"], bytes(row["secret_hash"]),
                      row["first_use"], row["valid"], row["expires_at"])


async def mark_refresh_used(conn: asyncpg.Connection, token_id: str) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = coalesce(used_at, now()) "
                       "WHERE token_id = $1", token_id)


async def revoke_family(conn: asyncpg.Connection, family: UUID) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) "
                       "WHERE family = $1", family)


# --- failed logins -----------------------------------------------------------------------

# The attempt's count: the window's count plus one, or 1 when the window is over.
_STALE = "f.window_start < now() - make_interval(secs => $2)"
_COUNT = f"CASE WHEN {_STALE} THEN 1 ELSE f.failures + 1 END"
_LOCKS = f"{_COUNT} >= $3"  # this attempt uses the last of the quota


async def count_attempt(conn: asyncpg.Connection, username: str,
                        settings: AuthSettings) -> float:
    """Count a login attempt before its password is checked: 0 to go on, else the
    seconds `username` stays locked (the attempt is refused, and not counted).

    One statement, under the row's lock, so parallel attempts each see the others'
    counts. The attempt that uses the last of the quota starts the lock itself,
    so none after it is verified whatever its outcome; a success then clears it
    (`clear_failures`). The lock starts a fresh window: after it, the username
    gets its full quota again."""
    counted = await conn.fetchval(
        f"""
        INSERT INTO login_failures AS f (username, failures, window_start, locked_until)
        VALUES ($1, CASE WHEN $3 <= 1 THEN 0 ELSE 1 END, now(),
                CASE WHEN $3 <= 1 THEN now() + make_interval(secs => $4) END)
        ON CONFLICT (username) DO UPDATE SET
            failures = CASE WHEN {_LOCKS} THEN 0 ELSE {_COUNT} END,
            window_start = CASE WHEN {_LOCKS} OR {_STALE} THEN now() ELSE f.window_start END,
            locked_until = CASE WHEN {_LOCKS} THEN now() + make_interval(secs => $4) END
        WHERE f.locked_until IS NULL OR f.locked_until <= now()
        RETURNING true
        """,  # noqa: S608 - the fragments are constants of this module
        username, float(settings.lockout_window_s), settings.lockout_failures,
        float(settings.lockout_s))
    if counted:
        return 0.0
    value = await conn.fetchval(
        "SELECT extract(epoch FROM locked_until - now()) FROM login_failures "
        "WHERE username = $1", username)
    return max(float(value or 0.0), 1.0)  # a lock that ended meanwhile: retry in a second


async def clear_failures(conn: asyncpg.Connection, username: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE username = $1", username)


# --- signing key and audit ---------------------------------------------------------------

async def signing_key(conn: asyncpg.Connection) -> bytes:
    """The key of dialtone's own tokens, made by whichever process asks first."""
    await conn.execute("INSERT INTO auth_signing_key (id, secret) VALUES (1, $1) "
                       "ON CONFLICT DO NOTHING", secrets.token_bytes(_SIGNING_KEY_BYTES))
    return bytes(await conn.fetchval("SELECT secret FROM auth_signing_key WHERE id = 1"))


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who (actor) did what (action) with which outcome."""

    action: str
    outcome: str
    request_id: str
    actor: str | None = None
    actor_kind: str = "anonymous"
    tenant: str | None = None
    aggregate_id: UUID | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    event_store: str | None = None  # the application whose log `positions` are in
    positions: tuple[int, ...] = ()  # store positions of the events the command stored


async def record_audit(conn: asyncpg.Connection, entry: AuditEntry) -> None:
    # `detail` goes as text cast to jsonb, so it reads the same whether or not the
    # connection has a json codec installed (the API pool has one, the CLI not).
    await conn.execute(
        "INSERT INTO audit_log (tenant, actor, actor_kind, action, outcome, aggregate_id, "
        "request_id, detail, event_store, positions) VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8::text::jsonb, $9, $10::bigint[])",
        entry.tenant, entry.actor, entry.actor_kind, entry.action, entry.outcome,
        entry.aggregate_id, entry.request_id, json.dumps(entry.detail), entry.event_store,
        list(entry.positions))


@dataclass(frozen=True)
class AuditQuery:
    """Which audit rows to list: one tenant's, newest first, below `before_id`."""

    tenant: str
    start: datetime
    end: datetime
    actor: str | None = None
    aggregate_id: UUID | None = None
    before_id: int | None = None  # the keyset: the last id of the previous page
    # The row whose command stored the event at this position of this store.
    position: tuple[int, str] | None = None


_AUDIT_COLUMNS = ("id, at, tenant, actor, actor_kind, action, outcome, aggregate_id, "
                  "request_id, detail::text AS detail, event_store, positions")


async def list_audit(conn: asyncpg.Connection, query: AuditQuery,
                     limit: int) -> list[dict[str, Any]]:
    """A page of audit rows; ids only grow, so `id < before_id` is a keyset (no OFFSET)."""
    rows = await conn.fetch(
        f"SELECT {_AUDIT_COLUMNS} FROM audit_log "  # noqa: S608 - constant columns
        "WHERE tenant = $1 AND at >= $2 AND at < $3 "
        "AND ($4::text IS NULL OR actor = $4) AND ($5::uuid IS NULL OR aggregate_id = $5) "
        "AND ($8::bigint IS NULL OR (event_store = $9 AND positions @> ARRAY[$8::bigint])) "
        "AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
        query.tenant, query.start, query.end, query.actor, query.aggregate_id,
        query.before_id, limit, *(query.position or (None, None)))
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]
