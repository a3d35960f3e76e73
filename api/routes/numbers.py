"""Inbound numbers (DIDs) and where their calls go. Read from the aggregates."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from api.auth.audit import audited, body_key, path_key
from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool
from api.problems import problem_responses
from api.routes import history
from api.routes.commands import Service, execute, now, target_of
from api.schemas.config import DID_PATTERN, NumberCreate, NumberPublic, NumbersPublic, NumberUpdate
from api.schemas.events import TimelinePublic
from domain.numbers import Number

TAG = {"name": "numbers", "description": "Inbound numbers (DID -> IVR menu, queue or number)."}
router = APIRouter(prefix="/v1/numbers", tags=["numbers"])
def number_id(did: str, _tenant: str) -> UUID:
    """A DID's number id: the same in every tenant (a DID belongs to one tenant)."""
    return Number.id_for(did)


NUMBER = path_key("did", number_id)  # the number a command acts on
NEW_NUMBER = body_key("did", number_id)  # the one a create makes

Did = Annotated[str, Path(pattern=DID_PATTERN, description="The number, e.g. `+3225550100`.")]


@router.post("", status_code=201, summary="Create a number",
             dependencies=[audited(P.CONFIG_WRITE, "numbers.create", NEW_NUMBER)],
             responses=problem_responses(409, 422))
async def create_number(body: NumberCreate, tenant: Tenant, service: Service) -> NumberPublic:
    destination = target_of(body.destination, "destination", tenant)
    return NumberPublic.of(await execute(lambda: service.create_number(
        body.did, destination, occurred_at=now(), label=body.label), field="destination",
        references={"destination.value": destination}))


@router.get("", summary="List numbers (active and inactive)",
            dependencies=[require(P.CONFIG_READ)])
async def list_numbers(service: Service) -> NumbersPublic:
    numbers = await execute(lambda: [service.get(Number, i) for i in service.ids_of(Number)])
    data = [NumberPublic.of(n) for n in sorted(numbers, key=lambda n: n.did)]
    return NumbersPublic(data=data, count=len(data))


@router.get("/{did}", summary="Get a number", responses=problem_responses(404, 422),
            dependencies=[require(P.CONFIG_READ)])
async def read_number(did: Did, service: Service) -> NumberPublic:
    return NumberPublic.of(await execute(lambda: service.get(Number, Number.id_for(did), did)))


@router.patch("/{did}", summary="Change a number's destination, label or activity",
              dependencies=[audited(P.CONFIG_WRITE, "numbers.update", NUMBER)],
              responses=problem_responses(404, 409, 422))
async def update_number(did: Did, tenant: Tenant, body: NumberUpdate,
                        service: Service) -> NumberPublic:
    at = now()
    destination = None if body.destination is None else target_of(body.destination,
                                                                   "destination", tenant)

    def change(number: Number) -> None:
        if destination is not None:
            number.route_to(destination, at)
        if body.label is not None:
            number.relabel(body.label, at)
        if body.active is not None and body.active != number.active:
            (number.activate if body.active else number.deactivate)(at)

    targets = [] if destination is None else [destination]
    return NumberPublic.of(await execute(lambda: service.configure_number(
        Number.id_for(did), change, targets), field="destination",
        references={"destination.value": destination}))


@router.delete("/{did}", summary="Deactivate a number",
               dependencies=[audited(P.CONFIG_WRITE, "numbers.deactivate", NUMBER)],
               description="The number stops routing; its history stays and PATCH "
               "`{\"active\": true}` brings it back. 409 when it is already inactive.",
               responses=problem_responses(404, 409, 422))
async def deactivate_number(did: Did, service: Service) -> NumberPublic:
    return NumberPublic.of(await execute(lambda: service.configure_number(
        Number.id_for(did), lambda n: n.deactivate(now()))))


@router.get("/{did}/timeline", summary="Get a number's events in order",
            description=history.TIMELINE_DESCRIPTION.format(what="number"),
            dependencies=[require(P.HISTORY_READ)], responses=problem_responses(404, 422))
async def read_timeline(pool: Pool, did: Did, tenant: Tenant,
                        after: history.After = 0,
                        limit: history.Limit = history.DEFAULT_LIMIT) -> TimelinePublic:
    return await history.timeline(pool, tenant, "number", Number.id_for(did), did, after, limit)
