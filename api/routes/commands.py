"""What the call-centre command routes share: the service from the composition
root, and running a command off the event loop with its domain errors turned
into problems.

Commands reach ``CallCentreService`` (synchronous eventsourcing) through
``request.app.state.callcentre``, set by whoever builds the app; they run in
the threadpool. Their responses are computed from the aggregate the command
changed, right after its events are committed: read-your-writes without
waiting for the projections, which the GET endpoints read (normally a few
milliseconds behind).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import asyncpg
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth.dependencies import Tenant
from api.db import Pool, acquire
from api.problems import NOT_FOUND_TYPE, ProblemError, invalid
from api.schemas.targets import TargetIn
from application.callcentre import (
    AlreadyExists,
    CallCentreService,
    ConcurrentChange,
    NotFound,
    UnknownTarget,
    parse_target,
)
from domain.addressing import Target
from domain.agent import UnknownSkill
from domain.errors import DomainError, IllegalTransition, InvalidValue
from domain.ivr import UnknownOption
from domain.numbers import UnknownRule
from domain.queue import NotAMember

T = TypeVar("T")
R = TypeVar("R")
CONFLICT_TYPE = "urn:dialtone:problem:conflict"
UNCONFIGURED_TYPE = "urn:dialtone:problem:service-unavailable"
NOT_PROJECTED_TYPE = "urn:dialtone:problem:not-projected-yet"
# How long a read waits for the projection of something the store already has.
PROJECTION_WAIT_S = 2.0
PROJECTION_POLL_S = 0.02
# Refusals that mean "no such thing", though the domain files them as bad values.
ABSENT = (NotFound, NotAMember, UnknownSkill, UnknownRule, UnknownOption)
CONFLICTS = (AlreadyExists, IllegalTransition, ConcurrentChange)


async def get_service(request: Request, tenant: Tenant) -> CallCentreService:
    """The service acting for the caller's tenant: another tenant's aggregates are
    404 (as missing ones), and what the caller creates is its tenant's."""
    service: CallCentreService | None = getattr(request.app.state, "callcentre", None)
    if service is None:
        raise ProblemError(503, "call-centre commands are not enabled in this process",
                           type_=UNCONFIGURED_TYPE)
    return service.scoped(tenant)


Service = Annotated[CallCentreService, Depends(get_service)]


def now() -> datetime:
    return datetime.now(UTC)


async def execute(command: Callable[[], T], *, field: str = "",
                  references: Mapping[str, Target | None] | None = None) -> T:
    """Run ``command`` in the threadpool. Unknown things are 404, refused state
    changes and taken keys 409 (the message names the current state), bad
    values 422 on ``field`` of the body.

    ``references``: the targets the body names, by the field naming each (e.g.
    ``default_action.value``). A queue or menu one of them names that does not
    exist makes the body invalid: 422 on that field, not 404, which is kept for
    the resource in the URL path (a client reading 404 would take the resource
    it addressed, perhaps just created, to be gone)."""
    try:
        return await run_in_threadpool(command)
    except UnknownTarget as error:
        named = [name for name, target in (references or {}).items() if target == error.target]
        raise invalid(named[0] if named else field, str(error), location="body") from error
    except ABSENT as error:
        raise ProblemError(404, str(error), type_=NOT_FOUND_TYPE) from error
    except CONFLICTS as error:
        raise ProblemError(409, str(error), type_=CONFLICT_TYPE) from error
    except InvalidValue as error:
        raise invalid(field, str(error), location="body") from error
    except DomainError as error:  # a rule with no better class: the request conflicts with it
        raise ProblemError(409, str(error), type_=CONFLICT_TYPE) from error


def target_of(body: TargetIn, field: str, tenant: str) -> Target:
    """The domain target a request names (a key names a queue or menu of
    ``tenant``); 422 on ``field`` when it is malformed."""
    try:
        return parse_target(body.kind, body.value, tenant)
    except InvalidValue as error:
        raise invalid(field, str(error), location="body") from error


async def projected(pool: Pool, fetch: Callable[[asyncpg.Connection], Awaitable[R | None]],
                    stored: Callable[[], object]) -> R:
    """The projection row ``fetch`` reads, for a thing the event store has.

    Read-your-writes: a GET right after the 201 that made the thing can reach
    the projection a few milliseconds before it does. 404 only when the store
    has no such thing either (``stored`` raises NotFound); otherwise wait,
    bounded, for the projection, and answer 503 with Retry-After if it stays
    behind (a stalled projection, which /healthz reports)."""
    deadline = time.monotonic() + PROJECTION_WAIT_S
    checked = False
    while True:
        async with acquire(pool) as db:
            row = await fetch(db)
        if row is not None:
            return row
        if not checked:
            await execute(stored)
            checked = True
        if time.monotonic() >= deadline:
            raise ProblemError(503, "it exists, but its projection has not caught up yet",
                               type_=NOT_PROJECTED_TYPE, headers={"Retry-After": "1"})
        await asyncio.sleep(PROJECTION_POLL_S)
