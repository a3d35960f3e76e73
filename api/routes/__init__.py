"""One router module per resource. A module defines `router` (an APIRouter with
its prefix and tag) and `TAG` (the tag's OpenAPI description); list it here to
mount it in every app, or pass its router to `create_app(extra_routers=...)`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth.audit_routes import TAG as AUDIT_TAG
from api.auth.routes import TAG as AUTH_TAG
from api.routes import (
    agents,
    calls,
    cdrs,
    dialplans,
    events,
    exports,
    health,
    ivr_menus,
    live,
    live_at,
    metrics,
    numbers,
    projections,
    queues,
    recordings,
    reports,
    skills,
    supervision,
    transfers,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (health.router, metrics.router, projections.router,
                                   calls.router, cdrs.router, live.router, live_at.router,
                                   webhooks.router, reports.router, events.router,
                                   exports.router, recordings.router)
# The call-centre resources: their commands need `app.state.callcentre` (a
# CallCentreService), so the composition root mounts them with extra_routers.
CALLCENTRE_ROUTERS: tuple[APIRouter, ...] = (
    agents.router, skills.router, queues.router, ivr_menus.router, numbers.router,
    dialplans.router, supervision.router, transfers.router,
)
TAGS: tuple[dict[str, Any], ...] = (
    health.TAG, projections.TAG, calls.TAG, cdrs.TAG, agents.TAG, skills.TAG, queues.TAG,
    ivr_menus.TAG, numbers.TAG, dialplans.TAG, supervision.TAG, transfers.TAG, AUTH_TAG,
    AUDIT_TAG, metrics.TAG, live.TAG, webhooks.TAG, reports.TAG, events.TAG, exports.TAG,
    recordings.TAG,
)
