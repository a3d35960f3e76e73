"""Queues: provisioning (settings, overflow, required skills, memberships) and
the live view (calls with position and wait, agents by state, counters)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Path

from api.auth.audit import audited, body_key, path_key
from api.auth.dependencies import Principal, Tenant, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.live import at as live_at
from api.live.at import At
from api.problems import NotFoundProblem, problem_responses
from api.queries import queues as queries
from api.routes import history
from api.routes.commands import Service, execute, now, projected, target_of
from api.schemas.events import TimelinePublic
from api.schemas.live import LiveSnapshot
from api.schemas.queues import (
    MemberPublic,
    MemberSet,
    QueueCounters,
    QueueCreate,
    QueuedCallPublic,
    QueueLivePublic,
    QueueMemberPublic,
    QueueMembersPublic,
    QueuePublic,
    QueuesPublic,
    QueueUpdate,
)
from api.schemas.targets import KEY_PATTERN
from application.callcentre import CallCentreService, require_skills
from domain.agent import Agent
from domain.queue import Queue, QueueTally
from domain.routing import RoutingStrategy

TAG = {"name": "queues", "description": (
    "Call queues: strategy, service level, maximum wait and overflow, wrap-up, music on "
    "hold, announcements, required skills, member agents with penalties; and each queue "
    "live. Commands answer with the queue as they left it; reads come from `queue_live`.")}
Historian = Annotated[Principal, require(P.HISTORY_READ)]
router = APIRouter(prefix="/v1/queues", tags=["queues"])
QUEUE = path_key("key", Queue.id_for)  # the queue a command acts on
NEW_QUEUE = body_key("key", Queue.id_for)  # the one a create makes

QueueKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The queue's key, e.g. `sales`.")]
AgentKey = Annotated[str, Path(pattern=KEY_PATTERN, description="The agent's key.")]
SETTERS: dict[str, Callable[[Queue, Any, datetime], None]] = {  # field -> its Queue command
    "service_level_s": Queue.set_service_level,
    "short_abandon_s": Queue.set_short_abandon,
    "wrap_up_s": Queue.set_wrap_up,
    "offer_timeout_s": Queue.set_offer_timeout,
    "music_on_hold": Queue.set_music_on_hold,
    "announce_position": Queue.set_position_announcements,
    "record_calls": Queue.set_recording,
}


# An overflow queue or menu that does not exist is 422 on `overflow.value`.
@router.post("", status_code=201, summary="Create a queue",
             responses=problem_responses(409, 422),
             dependencies=[audited(P.CONFIG_WRITE, "queues.create", NEW_QUEUE)])
async def create_queue(body: QueueCreate, tenant: Tenant, service: Service) -> QueuePublic:
    at = now()
    overflow = None if body.overflow is None else target_of(body.overflow, "overflow", tenant)

    def create() -> Queue:
        return service.create_queue(
            body.key, body.name, RoutingStrategy(body.strategy), occurred_at=at,
            required_skills=body.required_skills,
            overflow=None if overflow is None or body.max_wait_s is None
            else (body.max_wait_s, overflow),
            service_level_s=body.service_level_s, wrap_up_s=body.wrap_up_s,
            offer_timeout_s=body.offer_timeout_s, music_on_hold=body.music_on_hold,
            announce_position=body.announce_position, record_calls=body.record_calls)

    return QueuePublic.of(await execute(create, field="overflow",
                                        references={"overflow.value": overflow}))


@router.get("", summary="List queues",
            dependencies=[require(P.CONFIG_READ)])
async def list_queues(pool: Pool, tenant: Tenant) -> QueuesPublic:
    async with acquire(pool) as db:
        rows = await queries.queues(db, tenant)
        members = await queries.members(db, tenant, [row["queue_id"] for row in rows])
    data = [QueuePublic.from_row(dict(row), _members_of(members, row["queue_id"]))
            for row in rows]
    return QueuesPublic(data=data, count=len(data))


@router.get("/{key}", summary="Get a queue's settings, members and counters",
            dependencies=[require(P.CONFIG_READ)],
            responses=problem_responses(404, 422))
async def read_queue(pool: Pool, key: QueueKey, tenant: Tenant, service: Service) -> QueuePublic:
    row = await _projected(pool, key, tenant, service)
    async with acquire(pool) as db:
        members = await queries.members(db, tenant, [row["queue_id"]])
    return QueuePublic.from_row(dict(row), _members_of(members, row["queue_id"]))


@router.patch("/{key}", summary="Change a queue's settings",
              dependencies=[audited(P.CONFIG_WRITE, "queues.update", QUEUE)],
              responses=problem_responses(404, 422))
async def update_queue(key: QueueKey, tenant: Tenant, body: QueueUpdate,
                       service: Service) -> QueuePublic:
    at = now()
    given = body.model_fields_set
    overflow = None if body.overflow is None else target_of(body.overflow, "overflow", tenant)

    def change(queue: Queue) -> None:
        _configure(queue, body, at)
        if overflow is not None and body.max_wait_s is not None:
            queue.set_overflow(body.max_wait_s, overflow, at)
        elif "overflow" in given:
            queue.clear_overflow(at)

    def update() -> Queue:
        targets = [] if overflow is None else [overflow]
        return service.configure_queue(Queue.id_for(key, tenant), change, targets)

    return QueuePublic.of(await execute(update, field="overflow",
                                        references={"overflow.value": overflow}))


@router.get("/{key}/live", summary="The queue now: calls with position and wait, agents by state",
            dependencies=[require(P.CALLS_READ)],
            responses=problem_responses(404, 422))
async def read_live(pool: Pool, key: QueueKey, tenant: Tenant,
                    service: Service) -> QueueLivePublic:
    row = await _projected(pool, key, tenant, service)
    async with acquire(pool) as db:
        calls = await queries.calls(db, tenant, row["queue_id"])
        members = await queries.members(db, tenant, [row["queue_id"]])
        as_of: datetime = (await queries.clock(db))["as_of"]
    return _live(dict(row), calls, members, as_of)


@router.get("/{key}/members", summary="List a queue's member agents with their state",
            dependencies=[require(P.CONFIG_READ)],
            responses=problem_responses(404, 422))
async def list_members(pool: Pool, key: QueueKey, tenant: Tenant,
                       service: Service) -> QueueMembersPublic:
    await _projected(pool, key, tenant, service)
    async with acquire(pool) as db:
        rows = await queries.members(db, tenant, [Queue.id_for(key, tenant)])
    data = [QueueMemberPublic.model_validate(dict(row)) for row in rows]
    return QueueMembersPublic(data=data, count=len(data))


@router.put("/{key}/members/{agent}", summary="Add an agent to a queue, or change its penalty",
            dependencies=[audited(P.CONFIG_WRITE, "queues.member.set", QUEUE)],
            responses=problem_responses(404, 422))
async def set_member(key: QueueKey, agent: AgentKey, tenant: Tenant, body: MemberSet,
                     service: Service) -> QueuePublic:
    return QueuePublic.of(await execute(lambda: service.set_member(
        Queue.id_for(key, tenant), Agent.id_for(agent, tenant), body.penalty, now()),
        field="penalty"))


@router.delete("/{key}/members/{agent}", summary="Remove an agent from a queue",
               dependencies=[audited(P.CONFIG_WRITE, "queues.member.remove", QUEUE)],
               responses=problem_responses(404, 422))
async def remove_member(key: QueueKey, agent: AgentKey, tenant: Tenant,
                        service: Service) -> QueuePublic:
    return QueuePublic.of(await execute(lambda: service.remove_member(
        Queue.id_for(key, tenant), Agent.id_for(agent, tenant), now())))


def _configure(queue: Queue, body: QueueUpdate, at: datetime) -> None:
    if body.strategy is not None:
        queue.change_strategy(RoutingStrategy(body.strategy), at)
    for field, setter in SETTERS.items():
        value = getattr(body, field)
        if value is not None:
            setter(queue, value, at)
    if body.required_skills is not None:
        require_skills(queue, body.required_skills, at)


def _members_of(rows: list[Any], queue_id: UUID) -> list[MemberPublic]:
    return [MemberPublic(agent_id=r["agent_id"], penalty=r["penalty"])
            for r in rows if r["queue_id"] == queue_id]


def _live(row: dict[str, Any], calls: list[Any], members: list[Any],
          as_of: datetime) -> QueueLivePublic:
    tally = QueueTally(**{name: row[name] for name in vars(QueueTally())})
    public_calls = [QueuedCallPublic.model_validate(dict(c)) for c in calls]
    ringing = sum(1 for c in public_calls if c.ringing_agents)
    by_state = Counter(m["state"] for m in members if m["state"] is not None)
    return QueueLivePublic(
        queue_id=row["queue_id"], key=row["key"], calls=public_calls,
        calls_waiting=len(public_calls) - ringing, calls_ringing=ringing,
        oldest_wait_s=max((c.wait_s for c in public_calls), default=None),
        agents=dict(by_state), counters=QueueCounters.of(tally),
        asa_s=row["answered_wait_total_s"] / tally.answered if tally.answered else None,
        as_of=as_of,
    )


async def _projected(pool: Pool, key: str, tenant: str,
                     service: CallCentreService) -> asyncpg.Record:
    """The queue's projection row; 404 only when the store has no such queue (in
    the caller's tenant)."""
    queue_id = Queue.id_for(key, tenant)
    return await projected(pool, lambda db: queries.queue(db, tenant, queue_id),
                           lambda: service.get(Queue, queue_id, key))


@router.get("/{key}/timeline", summary="Get a queue's events in order",
            description=history.TIMELINE_DESCRIPTION.format(what="queue"),
            dependencies=[require(P.HISTORY_READ)], responses=problem_responses(404, 422))
async def read_timeline(pool: Pool, key: QueueKey, tenant: Tenant,
                        after: history.After = 0,
                        limit: history.Limit = history.DEFAULT_LIMIT) -> TimelinePublic:
    return await history.timeline(pool, tenant, "queue", Queue.id_for(key, tenant), key,
                                  after, limit)


@router.get("/{key}/at", summary="The queue as it was at a past instant t",
            description=("`GET /v1/live/at` narrowed to this queue: who was waiting and since "
                         "when, its agents by state and its figures as of `t`."),
            response_model=LiveSnapshot, responses=problem_responses(404, 422))
async def read_at(pool: Pool, key: QueueKey, principal: Historian, t: At) -> LiveSnapshot:
    at = await live_at.read_at(pool, principal, t, queue_id=Queue.id_for(key, principal.tenant))
    if not at.queues:  # unknown, another tenant's, or created after t
        raise NotFoundProblem("queue", key)
    return at
