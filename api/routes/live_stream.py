"""`GET /v1/live/stream`: the live view as Server-Sent Events (api/live/stream.py).

The router carries its own lifespan: inside the app's (the pool exists), it
opens this process's LISTEN connection (api/live/notify.py) and the hub that
refreshes the views, and closes both on shutdown.
"""

# No `from __future__ import annotations`: the route's annotations name the
# factory's `permission`, which FastAPI must see evaluated, not as a string.
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import StreamingResponse

from api.auth.dependencies import Principal, require
from api.auth.permissions import P, Permission
from api.live.notify import ProjectionListener
from api.live.snapshot import live_snapshot
from api.live.stream import LiveHub, SnapshotFn, sse_frames
from api.live.touched import PARTS
from api.live.views import PartialReads
from api.problems import problem_responses

HEARTBEAT_S = 15.0
TICK_S = 10.0  # without commits, window figures are re-read (and sent if moved) this often
MAX_STREAM_S = 300.0  # then the client reconnects and its credential is checked again
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: do not buffer


def stream_router(snapshot: SnapshotFn, permission: Permission, *,
                  heartbeat_s: float = HEARTBEAT_S, buffer: int = 64,
                  history: int = 256, max_stream_s: float = MAX_STREAM_S,
                  tick_s: float = TICK_S, partial: PartialReads | None = None) -> APIRouter:
    """The stream route over `snapshot` (what `GET /v1/live` answers), let in with
    `permission` (the one `GET /v1/live` requires); `partial`: how to read it in
    part, when a change says what it touched (api/live/stream.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        listener = ProjectionListener(app.state.database_url)
        hub = app.state.live_hub = LiveHub(app.state.pool, snapshot, history=history,
                                           buffer=buffer, tick_s=tick_s, partial=partial)
        app.state.live_listener = listener
        listener.subscribe(hub.wake)
        hub.start()
        listener.start()
        try:
            yield
        finally:
            await listener.stop()
            await hub.stop()

    router = APIRouter(prefix="/v1/live", tags=["live"], lifespan=lifespan)

    @router.get(
        "/stream", summary="The live view as Server-Sent Events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "An event stream (see docs/dashboard.md)."},
                   **problem_responses(401, 403)})
    async def live_stream(
        request: Request,
        principal: Annotated[Principal, require(permission)],
        last_event_id: Annotated[int | None, Header(ge=0, description=(
            "The id of the last event received: the stream goes on after it (the "
            "browser's EventSource sends it when it reconnects)."))] = None,
    ) -> Any:
        """Events after a position. `snapshot`: the whole view (first, or when the
        position asked for is not kept); `change`: a JSON Merge Patch (RFC 7396) of
        the view. The id of each event is the position it brings the client to. A
        comment line every 15 s of silence; a client too slow to read is
        disconnected and resumes with `Last-Event-ID`; so is every client after 5
        minutes, when its credential is checked again."""
        hub: LiveHub = request.app.state.live_hub
        subscriber = await hub.subscribe(principal, last_event_id)
        return StreamingResponse(
            sse_frames(hub, subscriber, heartbeat_s=heartbeat_s,
                       disconnected=request.is_disconnected, max_s=max_stream_s),
            media_type="text/event-stream", headers=SSE_HEADERS)

    return router


# What `dialtone api` mounts: the snapshot and the permission of `GET /v1/live`.
router = stream_router(live_snapshot, P.LIVE_READ, partial=PARTS)
