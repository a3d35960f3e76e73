"""Skills: every skill held by an agent or required by a queue.

A skill is not an aggregate of its own: it exists while an agent holds it or
a queue requires it. Give and take skills through `/v1/agents/{key}/skills/{skill}`
and queues' `required_skills`."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.queries import agents as queries
from api.schemas.agents import SkillPublic, SkillsPublic

TAG = {"name": "skills", "description": "Skills held by agents and required by queues."}
router = APIRouter(prefix="/v1/skills", tags=["skills"])


@router.get("", summary="List skills in use",
            dependencies=[require(P.CONFIG_READ)])
async def list_skills(pool: Pool, tenant: Tenant) -> SkillsPublic:
    async with acquire(pool) as db:
        rows = await queries.skills(db, tenant)
    data = [SkillPublic.model_validate(dict(row)) for row in rows]
    return SkillsPublic(data=data, count=len(data))
