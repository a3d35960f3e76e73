"""A call's recording, from object storage (issue 14 §5, docs/recordings.md).

Who may read it is who may read the call's history: `history:read` (every call of
the tenant), or an agent user for the calls their agent handled (`own_calls_or`);
any other call, a call without an uploaded recording, or one retention deleted
answers 404.

By default the API streams the object (``DIALTONE_RECORDINGS_DOWNLOAD=stream``):
the client needs no route to the storage server (MinIO stays internal), every
byte passes the API's authentication, and no URL that works without a token
ends up in a browser history or a proxy log. ``redirect`` answers 307 to a
presigned URL valid ``DIALTONE_RECORDINGS_PRESIGN_EXPIRES_S`` seconds instead,
which takes the bytes off the API where clients can reach the storage.

Every read is audited (`recordings.read`, docs/security.md): who, the tenant, the
call, the request id, how it was delivered (`stream` or `redirect`) and the status,
refusals (404) included. Never the presigned URL (a credential until it expires)
nor the object's key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlparse
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth.audit import annotate, answered, audited, path_id
from api.auth.ownership import Scope, own_calls_or
from api.auth.permissions import P
from api.db import Pool, acquire
from api.problems import NotFoundProblem, ProblemError, problem_responses
from api.queries import calls as queries

if TYPE_CHECKING:
    from application.recordings.settings import RecordingSettings
    from application.recordings.storage import ObjectStore

TAG = {"name": "recordings", "description": "Call recordings in object storage."}
router = APIRouter(prefix="/v1/calls", tags=["recordings"])

CALL = path_id("call_id")
CallId = Annotated[UUID, Path(description="The call's id (a UUID).")]
UNAVAILABLE = ProblemError(503, "recording storage unavailable, try again",
                           headers={"Retry-After": "5"})


def _store(request: Request) -> tuple[ObjectStore, RecordingSettings]:
    """The app's ObjectStore, made at first use (boto3 costs a second to import; an
    API that never serves a recording never pays it)."""
    store = getattr(request.app.state, "recordings", None)
    if store is None:
        from application.recordings.settings import RecordingSettings  # noqa: PLC0415
        from application.recordings.storage import ObjectStore  # noqa: PLC0415
        settings = RecordingSettings()
        store = request.app.state.recordings = (ObjectStore.from_settings(settings), settings)
    made: tuple[ObjectStore, RecordingSettings] = store
    return made


@router.get(
    "/{call_id}/recording",
    dependencies=[audited(own_calls_or(P.HISTORY_READ), "recordings.read", CALL)],
    summary="Download a call's recording",
    description="The WAV recorded for the call (queues with `record_calls`), once it is in "
    "object storage: streamed (`audio/wav`), or a 307 redirect to a short-lived presigned "
    "URL where the platform is set up so (docs/recordings.md). 404 while it is still being "
    "uploaded, when retention deleted it, or when the call had none.",
    responses={200: {"content": {"audio/wav": {}}, "description": "The recording."},
               307: {"description": "Redirect to a presigned URL of the object."},
               **problem_responses(404, 422, 503)},
    response_class=Response,
)
async def read_recording(request: Request, pool: Pool, call_id: CallId,
                         scope: Scope) -> Response:
    async with acquire(pool) as db:
        found, ref = await queries.recording_ref(db, scope, call_id)
    if not found:
        raise NotFoundProblem("call", call_id)
    where = urlparse(ref or "")
    if where.scheme != "s3" or not where.netloc or not where.path.strip("/"):
        raise NotFoundProblem("recording of call", call_id)
    store, settings = _store(request)
    if where.netloc != store.bucket:  # a bucket the platform wrote to before
        store = type(store)(store.client, where.netloc)
    key = where.path.lstrip("/")
    from application.recordings.storage import StorageError  # noqa: PLC0415
    try:
        annotate(delivery=settings.download)
        if settings.download == "redirect":
            url = await run_in_threadpool(store.presign, key, settings.presign_expires_s)
            answered(307)
            return RedirectResponse(url, status_code=307)
        opened = await run_in_threadpool(store.read, key)
    except StorageError:
        raise UNAVAILABLE from None
    if opened is None:
        raise NotFoundProblem("recording of call", call_id)
    size, chunks = opened
    return StreamingResponse(chunks, media_type="audio/wav", headers={
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{call_id}.wav"'})
