"""One router module per resource. A module defines `router` (an APIRouter with
its prefix and tag) and `TAG` (the tag's OpenAPI description); list it here to
mount it in every app, or pass its router to `create_app(extra_routers=...)`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.routes import calls, cdrs, health

ROUTERS: tuple[APIRouter, ...] = (health.router, calls.router, cdrs.router)
TAGS: tuple[dict[str, Any], ...] = (health.TAG, calls.TAG, cdrs.TAG)
