"""Agents: provisioning (create, read, list, update, skills, retire) and the
agent's own commands (login, pause, unpause, logout, finish wrap-up)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from api.auth.audit import audited, body_key, path_key
from api.auth.dependencies import Principal, Tenant, require
from api.auth.ownership import own_agent_or
from api.auth.permissions import P
from api.db import Pool, acquire
from api.live import at as live_at
from api.live.at import At
from api.problems import NotFoundProblem, invalid, problem_responses
from api.queries import agents as queries
from api.routes import history
from api.routes.commands import Service, execute, now, projected
from api.schemas.agents import (
    AgentCreate,
    AgentIntervalPublic,
    AgentIntervalsPublic,
    AgentLogin,
    AgentPause,
    AgentPublic,
    AgentsPublic,
    AgentStateName,
    AgentUpdate,
    SkillLevel,
)
from api.schemas.events import TimelinePublic
from api.schemas.live import LiveSnapshot
from api.schemas.targets import KEY_PATTERN, SKILL_PATTERN
from api.schemas.text import Instant, minus, plus
from application.callcentre import replace_skills
from application.identity import sip_credentials
from domain.agent import Agent
from domain.queue import Queue

TAG = {"name": "agents", "description": (
    "Call-centre agents: provisioning, skills, and presence commands (login, pause, unpause, "
    "logout). Commands answer with the agent as they left it; reads come from the "
    "`agent_state` projection.")}
Historian = Annotated[Principal, require(P.HISTORY_READ)]
router = APIRouter(prefix="/v1/agents", tags=["agents"])
AGENT = path_key("key", Agent.id_for)  # the agent a command acts on
NEW_AGENT = body_key("key", Agent.id_for)  # the one a create makes

AgentKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The agent's key, e.g. `alice`.")]
SkillPath = Annotated[str, Path(pattern=SKILL_PATTERN, description="A skill name.")]
MAX_INTERVAL_RANGE = timedelta(days=31)


def agent_id(key: str, tenant: str) -> UUID:
    return Agent.id_for(key, tenant)


@router.post("", status_code=201, summary="Create an agent (logged out)",
             dependencies=[audited(P.CONFIG_WRITE, "agents.create", NEW_AGENT)],
             responses=problem_responses(409, 422))
async def create_agent(body: AgentCreate, service: Service) -> AgentPublic:
    agent = await execute(lambda: service.create_agent(
        body.key, body.name, body.skills, occurred_at=now(),
        auto_pause_after=body.auto_pause_after))
    return AgentPublic.of(agent)


@router.get("", summary="List agents", responses=problem_responses(422),
            dependencies=[require(P.AGENTS_READ)])
async def list_agents(
    pool: Pool,
    tenant: Tenant,
    state: Annotated[AgentStateName | None, Query(description="Only agents in this state.")]
    = None,
    queue: Annotated[str | None, Query(pattern=KEY_PATTERN,
                                       description="Only members of this queue (its key).")]
    = None,
) -> AgentsPublic:
    queue_id = None if queue is None else Queue.id_for(queue, tenant)
    async with acquire(pool) as db:
        rows = await queries.agents(db, tenant, state, queue_id)
    data = [AgentPublic.model_validate(dict(row)) for row in rows]
    return AgentsPublic(data=data, count=len(data))


@router.get("/{key}", summary="Get an agent's current state",
            dependencies=[own_agent_or(P.AGENTS_READ)],
            responses=problem_responses(404, 422))
async def read_agent(pool: Pool, key: AgentKey, tenant: Tenant, service: Service) -> AgentPublic:
    row = await projected(pool, lambda db: queries.agent(db, tenant, agent_id(key, tenant)),
                          lambda: service.get(Agent, agent_id(key, tenant), key))
    return AgentPublic.model_validate(dict(row))


@router.patch("/{key}", summary="Change an agent's skills or auto-pause threshold",
              dependencies=[audited(P.CONFIG_WRITE, "agents.update", AGENT)],
              responses=problem_responses(404, 422))
async def update_agent(key: AgentKey, tenant: Tenant, body: AgentUpdate,
                       service: Service) -> AgentPublic:
    at = now()

    def change(agent: Agent) -> None:
        if body.skills is not None:
            replace_skills(agent, body.skills, at)
        if "auto_pause_after" in body.model_fields_set:
            agent.set_auto_pause(body.auto_pause_after, at)

    return AgentPublic.of(await execute(
        lambda: service.configure_agent(agent_id(key, tenant), change)))


@router.delete("/{key}", summary="Retire an agent",
               dependencies=[audited(P.CONFIG_WRITE, "agents.retire", AGENT)],
               description="Logs the agent out and removes it from every queue; refused (409) "
               "while the agent is reserved or on a call. Its history stays.",
               responses=problem_responses(404, 409, 422))
async def retire_agent(key: AgentKey, tenant: Tenant, service: Service) -> AgentPublic:
    return AgentPublic.of(await execute(lambda: service.retire_agent(agent_id(key, tenant), now())))


@router.put("/{key}/skills/{skill}", summary="Give an agent a skill (or change its level)",
            dependencies=[audited(P.CONFIG_WRITE, "agents.skill.set", AGENT)],
            responses=problem_responses(404, 422))
async def set_skill(key: AgentKey, tenant: Tenant, skill: SkillPath, body: SkillLevel,
                    service: Service) -> AgentPublic:
    agent = await execute(lambda: service.set_agent_skill(agent_id(key, tenant), skill, body.level,
                                                          now()), field="level")
    return AgentPublic.of(agent)


@router.delete("/{key}/skills/{skill}", summary="Take a skill from an agent",
               dependencies=[audited(P.CONFIG_WRITE, "agents.skill.remove", AGENT)],
               responses=problem_responses(404, 422))
async def remove_skill(key: AgentKey, tenant: Tenant, skill: SkillPath,
                       service: Service) -> AgentPublic:
    return AgentPublic.of(await execute(
        lambda: service.remove_agent_skill(agent_id(key, tenant), skill, now())))


@router.post("/{key}/login", summary="Log an agent in on a device",
             dependencies=[audited(own_agent_or(P.AGENTS_WRITE), "agents.login", AGENT)],
             responses=problem_responses(404, 409, 422))
async def login(key: AgentKey, tenant: Tenant, body: AgentLogin, service: Service,
                pool: Pool) -> AgentPublic:
    """On a device URI, or by extension: the AOR of a device provisioned in the
    tenant's SIP domain, where offers reach its registration through Kamailio."""
    device = body.device_uri
    if body.extension is not None:
        async with acquire(pool) as conn:
            device = await sip_credentials.device_aor(conn, tenant, body.extension)
        if device is None:  # a reference in the body: 422 on it, 404 is for the agent
            raise invalid("extension", f"no device {body.extension!r} in the tenant's SIP "
                          "domain", location="body")
    assert device is not None  # the body has exactly one of the two
    return AgentPublic.of(await execute(
        lambda: service.login(agent_id(key, tenant), device, now()), field="device_uri"))


@router.post("/{key}/pause", summary="Pause an agent with a reason",
             dependencies=[audited(own_agent_or(P.AGENTS_WRITE), "agents.pause", AGENT)],
             responses=problem_responses(404, 409, 422))
async def pause(key: AgentKey, tenant: Tenant, body: AgentPause, service: Service) -> AgentPublic:
    return AgentPublic.of(await execute(
        lambda: service.pause(agent_id(key, tenant), body.reason, now()), field="reason"))


@router.post("/{key}/unpause", summary="Make a paused agent available again",
             dependencies=[audited(own_agent_or(P.AGENTS_WRITE), "agents.unpause", AGENT)],
             responses=problem_responses(404, 409, 422))
async def unpause(key: AgentKey, tenant: Tenant, service: Service) -> AgentPublic:
    return AgentPublic.of(await execute(lambda: service.resume(agent_id(key, tenant), now())))


@router.post("/{key}/logout", summary="Log an agent out",
             dependencies=[audited(own_agent_or(P.AGENTS_WRITE), "agents.logout", AGENT)],
             responses=problem_responses(404, 409, 422))
async def logout(key: AgentKey, tenant: Tenant, service: Service) -> AgentPublic:
    return AgentPublic.of(await execute(lambda: service.logout(agent_id(key, tenant), now())))


@router.post("/{key}/wrap-up/finish", summary="End an agent's after-call work early",
             dependencies=[audited(own_agent_or(P.AGENTS_WRITE), "agents.wrap_up.finish", AGENT)],
             responses=problem_responses(404, 409, 422))
async def finish_wrap_up(key: AgentKey, tenant: Tenant, service: Service) -> AgentPublic:
    await execute(lambda: service.finish_wrap_up(agent_id(key, tenant), now()))
    return AgentPublic.of(await execute(lambda: service.get(Agent, agent_id(key, tenant))))


@router.get("/{key}/intervals", summary="Time an agent spent in each state",
            dependencies=[own_agent_or(P.AGENTS_READ)],
            description="State periods overlapping [`from`, `to`) (default: the last 24 hours; "
            "at most 31 days), oldest first; the current period has no end.",
            responses=problem_responses(404, 422))
async def read_intervals(
    pool: Pool,
    key: AgentKey,
    tenant: Tenant,
    service: Service,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
) -> AgentIntervalsPublic:
    end = end or now()
    start = start or minus(end, timedelta(days=1))
    if not start < end <= plus(start, MAX_INTERVAL_RANGE):
        raise invalid("to", "must be after `from` and at most 31 days later")
    await projected(pool, lambda db: queries.agent(db, tenant, agent_id(key, tenant)),
                    lambda: service.get(Agent, agent_id(key, tenant), key))
    async with acquire(pool) as db:
        rows = await queries.intervals(db, tenant, agent_id(key, tenant), start, end)
    data = [AgentIntervalPublic.model_validate(dict(row)) for row in rows]
    return AgentIntervalsPublic(agent_id=agent_id(key, tenant), data=data, count=len(data))


@router.get("/{key}/timeline", summary="Get an agent's events in order",
            description=history.TIMELINE_DESCRIPTION.format(what="agent"),
            dependencies=[require(P.HISTORY_READ)], responses=problem_responses(404, 422))
async def read_timeline(pool: Pool, key: AgentKey, tenant: Tenant,
                        after: history.After = 0,
                        limit: history.Limit = history.DEFAULT_LIMIT) -> TimelinePublic:
    return await history.timeline(pool, tenant, "agent", agent_id(key, tenant), key, after, limit)


@router.get("/{key}/at", summary="The agent as it was at a past instant t",
            description=("`GET /v1/live/at` narrowed to this agent: its state, since when, and "
                         "its figures today as of `t`."),
            response_model=LiveSnapshot, responses=problem_responses(404, 422))
async def read_at(pool: Pool, key: AgentKey, principal: Historian, t: At) -> LiveSnapshot:
    at = await live_at.read_at(pool, principal, t, agent_key=key)
    if not at.agents:  # unknown, another tenant's, or created after t
        raise NotFoundProblem("agent", key)
    return at
