"""Devices' SIP credentials (issue 14 §1): the table Kamailio's auth_db reads
(migrations/schema/0020_sip_subscribers.sql) and the tenant's SIP domain.

A device registers as ``user@<the tenant's SIP domain>``; the domain is also the
digest realm. The password is taken once, turned into RFC 2617's HA1 hashes here
and dropped: nothing stores, logs or returns it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from application.identity.model import Conflict, IdentityError

# A SIP user part the phone, Kamailio's auth_db and the Redis keys all take as is.
SIP_USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class NoSipDomain(IdentityError):  # noqa: N818 - reads as the outcome
    """The tenant has no SIP domain yet: its devices have nowhere to register."""


@dataclass(frozen=True)
class SipCredential:
    """A device's SIP identity, as shown (never a hash, never the password)."""

    username: str
    domain: str
    created_at: datetime

    @property
    def aor(self) -> str:
        return f"sip:{self.username}@{self.domain}"


def _md5(text: str) -> str:
    # RFC 2617 / 3261 digest defines HA1 as MD5; Kamailio compares these hex strings.
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


def digest_hashes(username: str, domain: str, password: str) -> tuple[str, str]:
    """(ha1, ha1b): md5(user:realm:password) and md5(user@domain:realm:password), the
    realm being the domain (auth_db's password_column and password_column_2)."""
    return (_md5(f"{username}:{domain}:{password}"),
            _md5(f"{username}@{domain}:{domain}:{password}"))


async def sip_domain(conn: asyncpg.Connection, tenant: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT sip_domain FROM tenants WHERE id = $1", tenant)
    return value


async def set_sip_domain(conn: asyncpg.Connection, tenant: str, domain: str) -> None:
    """Give the tenant its SIP domain; Conflict if another tenant has it, or still has
    devices provisioned in it (a tenant that moved on keeps those: they register there
    with their old credentials, and must stay its). Devices provisioned before keep the
    domain (and hashes) they were made with."""
    async with conn.transaction():
        # Serialises domain changes, so two tenants cannot both pass the check below.
        await conn.execute("LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT 1 FROM sip_subscribers WHERE lower(domain) = lower($1)"
                               " AND tenant <> $2 LIMIT 1", domain, tenant):
            raise Conflict(domain)
        try:
            await conn.execute("UPDATE tenants SET sip_domain = $2 WHERE id = $1", tenant,
                               domain)
        except asyncpg.UniqueViolationError:
            raise Conflict(domain) from None


async def create_credential(conn: asyncpg.Connection, tenant: str, username: str,
                            password: str) -> SipCredential:
    """Provision ``username`` in the tenant's SIP domain with this password's hashes.
    NoSipDomain when the tenant has none; Conflict when the user exists there."""
    domain = await sip_domain(conn, tenant)
    if domain is None:
        raise NoSipDomain(tenant)
    ha1, ha1b = digest_hashes(username, domain, password)
    try:
        row = await conn.fetchrow(
            "INSERT INTO sip_subscribers (tenant, username, domain, ha1, ha1b)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING username, domain, created_at",
            tenant, username, domain, ha1, ha1b)
    except asyncpg.UniqueViolationError:
        raise Conflict(username) from None
    assert row is not None
    return SipCredential(row["username"], row["domain"], row["created_at"])


async def device_aor(conn: asyncpg.Connection, tenant: str, username: str) -> str | None:
    """The AOR of the tenant's device ``username`` (``sip:user@domain``), None if the
    tenant has no such device."""
    domain: str | None = await conn.fetchval(
        "SELECT domain FROM sip_subscribers WHERE tenant = $1 AND username = $2"
        " ORDER BY created_at DESC LIMIT 1", tenant, username)
    return None if domain is None else f"sip:{username}@{domain}"


async def list_credentials(conn: asyncpg.Connection, tenant: str) -> list[SipCredential]:
    rows = await conn.fetch(
        "SELECT username, domain, created_at FROM sip_subscribers WHERE tenant = $1"
        " ORDER BY username, domain", tenant)
    return [SipCredential(r["username"], r["domain"], r["created_at"]) for r in rows]


async def delete_credential(conn: asyncpg.Connection, tenant: str, username: str) -> bool:
    """Remove the tenant's device ``username`` (any domain it was made in); False if
    the tenant has none. Its next REGISTER or re-REGISTER is refused."""
    status: str = await conn.execute(
        "DELETE FROM sip_subscribers WHERE tenant = $1 AND username = $2", tenant, username)
    return status != "DELETE 0"
