"""`/v1/webhooks`: an integrator's subscriptions to signed CloudEvents over HTTP.

Everything stays in the caller's tenant: another tenant's subscription ids answer
404. The secret is shown once (when dialtone made it) and never again; the audit
log records who changed what, never the secret or the URL's query.
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from standardwebhooks.webhooks import Webhook

from api.auth.audit import audited, created, path_id
from api.auth.dependencies import Principal, require
from api.auth.permissions import Permission
from api.db import Pool, acquire
from api.problems import NotFoundProblem, invalid, problem_responses
from api.queries import webhooks as queries
from api.schemas.webhooks import (
    MAX_BIGINT,
    DeliveryAttemptPublic,
    DeliveryAttemptsPublic,
    Redelivery,
    RedeliveryQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksPublic,
    WebhookUpdate,
)
from application.webhooks.guard import TargetRefused, check_url, parse_allow
from application.webhooks.settings import WebhookSettings

TAG = {"name": "webhooks", "description": "Signed CloudEvents POSTed to your URL "
       "(Standard Webhooks signatures; docs/webhooks.md)."}
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

P = Permission.WEBHOOKS_MANAGE
Manager = Annotated[Principal, require(P)]
SECRET_BYTES = 32


def _audited(action: str) -> Any:
    """Audited, the subscription in the path its aggregate (a create names its own)."""
    return audited(P, action, path_id("webhook_id"))


async def webhook_settings(request: Request) -> WebhookSettings:
    """The app's webhook settings (`app.state.webhooks`), read from the environment once."""
    found: WebhookSettings | None = getattr(request.app.state, "webhooks", None)
    if found is None:
        found = request.app.state.webhooks = WebhookSettings()
    return found


Settings = Annotated[WebhookSettings, Depends(webhook_settings)]


def _check_url(url: str, settings: WebhookSettings) -> None:
    try:
        check_url(url, parse_allow(settings.allow_nets))
    except TargetRefused as exc:
        raise invalid("url", f"Webhook URL refused: {exc}.", location="body") from None


def _check_secret(secret: str) -> None:
    try:
        Webhook(secret)
    except Exception:  # the library raises bare errors of several kinds on bad base64
        raise invalid("secret", "The secret must be whsec_ and base64.",
                      location="body") from None


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@router.post("", status_code=201, response_model=WebhookCreated,
             responses=problem_responses(401, 403, 422))
async def create_webhook(body: WebhookCreate, pool: Pool, settings: Settings,
                         principal: Annotated[Principal, _audited("webhooks.create")],
                         ) -> WebhookCreated:
    """Subscribe `url` to `event_types`; deliveries start with the next matching event."""
    _check_url(body.url, settings)
    if body.secret is not None:
        _check_secret(body.secret)
    secret = body.secret or new_secret()
    async with acquire(pool) as conn:
        row = await queries.create(conn, uuid4(), principal.tenant, body.url,
                                   sorted(set(body.event_types)), secret)
    created(row["id"])
    return WebhookCreated(**row, secret=None if body.secret else secret)


@router.get("", response_model=WebhooksPublic, responses=problem_responses(401, 403))
async def list_webhooks(principal: Manager, pool: Pool) -> WebhooksPublic:
    """The tenant's subscriptions (never their secrets)."""
    async with acquire(pool) as conn:
        rows = await queries.list_all(conn, principal.tenant)
    return WebhooksPublic(data=[WebhookPublic(**r) for r in rows], count=len(rows))


@router.get("/{webhook_id}", response_model=WebhookPublic,
            responses=problem_responses(401, 403, 404))
async def get_webhook(webhook_id: UUID, principal: Manager, pool: Pool) -> WebhookPublic:
    async with acquire(pool) as conn:
        return WebhookPublic(**await _found(conn, webhook_id, principal.tenant))


@router.patch("/{webhook_id}", response_model=WebhookPublic,
              responses=problem_responses(401, 403, 404, 422))
async def update_webhook(webhook_id: UUID, body: WebhookUpdate, pool: Pool, settings: Settings,
                         principal: Annotated[Principal, _audited("webhooks.update")],
                         ) -> WebhookPublic:
    """Change the URL, the event types or the secret (the next attempt uses them)."""
    changes = body.model_dump(exclude_none=True)
    if "url" in changes:
        _check_url(changes["url"], settings)
    if "secret" in changes:
        _check_secret(changes["secret"])
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    return await _change(pool, webhook_id, principal.tenant, changes)


@router.delete("/{webhook_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def delete_webhook(webhook_id: UUID, pool: Pool,
                         principal: Annotated[Principal, _audited("webhooks.delete")],
                         ) -> Response:
    """Remove the subscription, its queue and its delivery log."""
    async with acquire(pool) as conn:
        if not await queries.delete(conn, webhook_id, principal.tenant):
            raise NotFoundProblem("webhook", webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/pause", response_model=WebhookPublic,
             responses=problem_responses(401, 403, 404))
async def pause_webhook(webhook_id: UUID, pool: Pool,
                        principal: Annotated[Principal, _audited("webhooks.pause")],
                        ) -> WebhookPublic:
    """Stop sending; matching events keep queueing and go out after resume."""
    return await _change(pool, webhook_id, principal.tenant, {"status": "paused"})


@router.post("/{webhook_id}/resume", response_model=WebhookPublic,
             responses=problem_responses(401, 403, 404))
async def resume_webhook(webhook_id: UUID, pool: Pool,
                         principal: Annotated[Principal, _audited("webhooks.resume")],
                         ) -> WebhookPublic:
    """Send again (a paused or disabled subscription); the failure clock restarts and
    its pending deliveries are due at once (not at the end of their backoff)."""
    async with acquire(pool) as conn:
        async with conn.transaction():
            if not await queries.resume(conn, webhook_id, principal.tenant):
                raise NotFoundProblem("webhook", webhook_id)
        return WebhookPublic(**await _found(conn, webhook_id, principal.tenant))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryAttemptsPublic,
            responses=problem_responses(401, 403, 404, 422))
async def list_deliveries(
    webhook_id: UUID, principal: Manager, pool: Pool, request: Request, response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_BIGINT, description="Attempts older than this "
                                        "attempt_id (the next page).")] = None,
) -> DeliveryAttemptsPublic:
    """The delivery log: one entry per attempt, newest first; page with `next_before`
    (or the `Link: rel="next"` header)."""
    async with acquire(pool) as conn:
        await _found(conn, webhook_id, principal.tenant)
        rows, next_before = await queries.attempts(conn, webhook_id, limit, before)
    if next_before is not None:
        url = request.url.include_query_params(before=next_before)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return DeliveryAttemptsPublic(data=[DeliveryAttemptPublic(**r) for r in rows],
                                  count=len(rows), next_before=next_before)


@router.post("/{webhook_id}/redeliver", response_model=RedeliveryQueued,
             responses=problem_responses(401, 403, 404, 422))
async def redeliver(webhook_id: UUID, body: Redelivery, pool: Pool,
                    principal: Annotated[Principal, _audited("webhooks.redeliver")],
                    ) -> RedeliveryQueued:
    """Send again every event this subscription received from `from_position` on."""
    async with acquire(pool) as conn, conn.transaction():
        await _found(conn, webhook_id, principal.tenant)
        queued = await queries.redeliver(conn, webhook_id, body.from_position)
    return RedeliveryQueued(queued=queued)


async def _found(conn: Any, webhook_id: UUID, tenant: str) -> dict[str, Any]:
    row = await queries.get(conn, webhook_id, tenant)
    if row is None:
        raise NotFoundProblem("webhook", webhook_id)
    return row


async def _change(pool: Any, webhook_id: UUID, tenant: str,
                  changes: dict[str, Any]) -> WebhookPublic:
    async with acquire(pool) as conn:
        if changes and not await queries.update(conn, webhook_id, tenant, changes):
            raise NotFoundProblem("webhook", webhook_id)
        return WebhookPublic(**await _found(conn, webhook_id, tenant))
