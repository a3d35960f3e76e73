"""Dialplans: ordered rules from a dialled number to a SIP URI. Read from the aggregates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth.audit import audited, body_key, path_key
from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool
from api.problems import problem_responses
from api.routes import history
from api.routes.commands import Service, execute, now
from api.schemas.config import (
    DialplanCreate,
    DialplanPublic,
    DialplansPublic,
    DialRuleSet,
    Resolution,
)
from api.schemas.events import TimelinePublic
from api.schemas.targets import KEY_PATTERN
from api.schemas.text import text_query
from domain.numbers import Dialplan, DialRule, MatchKind

TAG = {"name": "dialplans", "description": "Outbound routing: number -> SIP URI rules."}
router = APIRouter(prefix="/v1/dialplans", tags=["dialplans"])
PLAN = path_key("key", Dialplan.id_for)  # the dialplan a command acts on
NEW_PLAN = body_key("key", Dialplan.id_for)  # the one a create makes

PlanKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The dialplan's key.")]
RuleName = Annotated[str, Path(pattern=KEY_PATTERN, description="The rule's name.")]


@router.post("", status_code=201, summary="Create a dialplan",
             dependencies=[audited(P.CONFIG_WRITE, "dialplans.create", NEW_PLAN)],
             responses=problem_responses(409, 422))
async def create_plan(body: DialplanCreate, service: Service) -> DialplanPublic:
    rules = [DialRule(r.name, MatchKind(r.kind), r.pattern, r.uri_template) for r in body.rules]
    return DialplanPublic.of(await execute(lambda: service.create_dialplan(
        body.key, body.name, rules, occurred_at=now()), field="rules"))


@router.get("", summary="List dialplans",
            dependencies=[require(P.CONFIG_READ)])
async def list_plans(service: Service) -> DialplansPublic:
    plans = await execute(lambda: [service.get(Dialplan, i) for i in service.ids_of(Dialplan)])
    data = [DialplanPublic.of(p) for p in sorted(plans, key=lambda p: p.key)]
    return DialplansPublic(data=data, count=len(data))


@router.get("/{key}", summary="Get a dialplan", responses=problem_responses(404, 422),
            dependencies=[require(P.CONFIG_READ)])
async def read_plan(key: PlanKey, tenant: Tenant, service: Service) -> DialplanPublic:
    return DialplanPublic.of(await execute(
        lambda: service.get(Dialplan, Dialplan.id_for(key, tenant), key)))


@router.get("/{key}/resolve", summary="Which URI a number resolves to",
            dependencies=[require(P.CONFIG_READ)],
            responses=problem_responses(404, 422))
async def resolve(key: PlanKey, tenant: Tenant, service: Service,
                  number: Annotated[str, text_query(max_length=32)]) -> Resolution:
    plan = await execute(lambda: service.get(Dialplan, Dialplan.id_for(key, tenant), key))
    return Resolution(number=number, uri=plan.resolve(number))


@router.put("/{key}/rules/{rule}", summary="Add a rule, or change it (and move it)",
            dependencies=[audited(P.CONFIG_WRITE, "dialplans.rule.set", PLAN)],
            responses=problem_responses(404, 422))
async def set_rule(key: PlanKey, tenant: Tenant, rule: RuleName, body: DialRuleSet,
                   service: Service) -> DialplanPublic:
    at = now()
    new = DialRule(rule, MatchKind(body.kind), body.pattern, body.uri_template)

    def change(plan: Dialplan) -> None:
        if plan.has_rule(rule):
            plan.change_rule(new, at)
            if body.position is not None:
                plan.move_rule(rule, body.position, at)
        else:
            plan.add_rule(new, at, body.position)

    return DialplanPublic.of(await execute(lambda: service.configure_dialplan(
        Dialplan.id_for(key, tenant), change), field="rule"))


@router.delete("/{key}/rules/{rule}", summary="Remove a rule",
               dependencies=[audited(P.CONFIG_WRITE, "dialplans.rule.remove", PLAN)],
               responses=problem_responses(404, 422))
async def remove_rule(key: PlanKey, tenant: Tenant, rule: RuleName,
                      service: Service) -> DialplanPublic:
    return DialplanPublic.of(await execute(lambda: service.configure_dialplan(
        Dialplan.id_for(key, tenant), lambda p: p.remove_rule(rule, now()))))


@router.get("/{key}/timeline", summary="Get a dialplan's events in order",
            description=history.TIMELINE_DESCRIPTION.format(what="dialplan"),
            dependencies=[require(P.HISTORY_READ)], responses=problem_responses(404, 422))
async def read_timeline(pool: Pool, key: PlanKey, tenant: Tenant,
                        after: history.After = 0,
                        limit: history.Limit = history.DEFAULT_LIMIT) -> TimelinePublic:
    return await history.timeline(pool, tenant, "dialplan", Dialplan.id_for(key, tenant), key,
                                  after, limit)
