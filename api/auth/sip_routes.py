"""`/v1/auth/sip`: the tenant's SIP domain and its devices' SIP credentials (admin),
what Kamailio's registrar checks a REGISTER against (issue 14 §1, docs/edge.md).

A device's password arrives once, in the create request; only its digest hashes
are stored (application/identity/sip_credentials.py). No response, log line or
audit entry carries the password or a hash."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from api.auth.audit import record_done
from api.auth.dependencies import Principal, RequestId, require
from api.auth.permissions import Permission
from api.db import Pool, acquire
from api.problems import NotFoundProblem, ProblemError, problem_responses
from application.identity import sip_credentials
from application.identity.model import Conflict
from application.identity.sip_credentials import SIP_USER_PATTERN, NoSipDomain, SipCredential

router = APIRouter(prefix="/v1/auth/sip", tags=["auth"])

# Devices are credentials of the tenant, like its people and keys: the admin's.
DevicesAdmin = Annotated[Principal, require(Permission.USERS_ADMIN)]

_DOMAIN = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$"


class SipDomain(BaseModel):
    domain: str = Field(pattern=_DOMAIN, max_length=253, examples=["acme.example.com"],
                        description="The tenant's SIP domain: devices register as "
                        "user@domain, and it is the digest realm.")


class SipCredentialCreate(BaseModel):
    username: str = Field(pattern=SIP_USER_PATTERN, examples=["desk-101"],
                          description="The device's SIP user.")
    password: str = Field(min_length=12, max_length=200, description="Taken once: only its "
                          "digest hashes are kept; it is never shown again.")


class SipCredentialPublic(BaseModel):
    username: str
    domain: str
    aor: str = Field(description="The address of record the device registers.")


class SipCredentialsPublic(BaseModel):
    data: list[SipCredentialPublic]
    count: int


def _public(credential: SipCredential) -> SipCredentialPublic:
    return SipCredentialPublic(username=credential.username, domain=credential.domain,
                               aor=credential.aor)


@router.get("/domain", response_model=SipDomain, responses=problem_responses(401, 403, 404))
async def get_domain(principal: DevicesAdmin, pool: Pool) -> SipDomain:
    """The caller's tenant's SIP domain (404 until one is set)."""
    async with acquire(pool) as conn:
        domain = await sip_credentials.sip_domain(conn, principal.tenant)
    if domain is None:
        raise NotFoundProblem("SIP domain of tenant", principal.tenant)
    return SipDomain(domain=domain)


@router.put("/domain", status_code=204, responses=problem_responses(401, 403, 409, 422))
async def set_domain(body: SipDomain, principal: DevicesAdmin, pool: Pool,
                     rid: RequestId) -> Response:
    """Set the caller's tenant's SIP domain (one tenant per domain). Devices made
    before keep the domain they were provisioned in."""
    async with acquire(pool) as conn:
        try:
            await sip_credentials.set_sip_domain(conn, principal.tenant, body.domain.lower())
        except Conflict:
            raise ProblemError(409, f"SIP domain {body.domain} is taken.") from None
        await record_done(conn, principal, rid, "sip.domain", {"domain": body.domain.lower()})
    return Response(status_code=204)


@router.get("/credentials", response_model=SipCredentialsPublic,
            responses=problem_responses(401, 403))
async def list_credentials(principal: DevicesAdmin, pool: Pool) -> SipCredentialsPublic:
    """The devices of the caller's tenant (never a password or a hash)."""
    async with acquire(pool) as conn:
        found = await sip_credentials.list_credentials(conn, principal.tenant)
    return SipCredentialsPublic(data=[_public(c) for c in found], count=len(found))


@router.post("/credentials", status_code=201, response_model=SipCredentialPublic,
             responses=problem_responses(401, 403, 409, 422))
async def create_credential(body: SipCredentialCreate, principal: DevicesAdmin, pool: Pool,
                            rid: RequestId) -> SipCredentialPublic:
    """Provision a device: its SIP user in the tenant's SIP domain, with this password.
    409 if the user exists there or the tenant has no SIP domain yet."""
    async with acquire(pool) as conn:
        try:
            made = await sip_credentials.create_credential(conn, principal.tenant,
                                                           body.username, body.password)
        except NoSipDomain:
            raise ProblemError(409, "Set the tenant's SIP domain first "
                               "(PUT /v1/auth/sip/domain).") from None
        except Conflict:
            raise ProblemError(409, f"SIP user {body.username} exists.") from None
        await record_done(conn, principal, rid, "sip.credentials.create",
                     {"username": made.username, "domain": made.domain})
    return _public(made)


SipUser = Annotated[str, Path(pattern=SIP_USER_PATTERN, description="The device's SIP user.")]


@router.delete("/credentials/{username}", status_code=204,
               responses=problem_responses(401, 403, 404, 422))
async def delete_credential(username: SipUser, principal: DevicesAdmin, pool: Pool,
                            rid: RequestId) -> Response:
    """Remove a device of the caller's tenant: its next REGISTER is refused."""
    async with acquire(pool) as conn:
        if not await sip_credentials.delete_credential(conn, principal.tenant, username):
            raise NotFoundProblem("SIP user", username)
        await record_done(conn, principal, rid, "sip.credentials.delete", {"username": username})
    return Response(status_code=204)
