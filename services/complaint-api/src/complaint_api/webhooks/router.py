"""HTTP routes of webhooks: subscribe, list, read, unsubscribe, and each webhook's delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from complaint_api.complaints.dependencies import SettingsDep
from complaint_api.webhooks import service
from complaint_api.webhooks.destinations import RefusedDestination, check_destination
from complaint_api.webhooks.models import Webhook
from complaint_api.webhooks.schemas import DeliveryRead, DeliveryStatus, WebhookCreate, WebhookCreated, WebhookRead
from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import Unprocessable, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhooksManager = Annotated[Principal, require("webhooks:manage")]

SIGNING = """
Each event is POSTed as JSON with `X-CRM-Event`, `X-CRM-Delivery` (the same on every retry: drop duplicates
by it), `X-CRM-Timestamp` (unix seconds) and `X-CRM-Signature: sha256=<hex HMAC-SHA256(secret,
"<timestamp>.<raw body>")>`. Refuse signatures that do not match or are more than 5 minutes old. Answer 2xx
to acknowledge; anything else (or no answer within 5 s) is retried with exponential backoff (at most 15 min
apart) for 3 days. A complaint's events arrive one at a time in timeline order: a later one waits until the
earlier one was acknowledged.
"""


def _location(webhook: Webhook) -> dict[str, str]:
    return {"Location": f"/v1/webhooks/{webhook.id}"}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe a URL to complaint events",
    description="Events that happen from now on are delivered. Without a `secret` one is generated and shown "
    "in this response only. Send `Idempotency-Key` to retry safely; once the webhook is deleted, a retry is a "
    "410.\n" + SIGNING,
    responses=problem_responses(401, 403, 409, 410, 422),
)
async def create_webhook(
    data: WebhookCreate,
    session: SessionDep,
    idempotency: IdempotencyDep,
    principal: WebhooksManager,
    settings: SettingsDep,
) -> Response:
    try:
        await check_destination(data.url, allow_private=settings.webhook_allow_private)
    except RefusedDestination as exc:
        raise Unprocessable(str(exc), field="url") from exc

    async def produce() -> Response:
        webhook, generated = await service.create_webhook(session, data=data, actor=principal.name)
        body = WebhookCreated.model_validate({**WebhookRead.model_validate(webhook).model_dump(), "secret": generated})
        return model_response(body, status_code=201, headers=_location(webhook))

    return await idempotency.execute(produce)


@router.get(
    "",
    response_model=Page[WebhookRead],
    summary="List webhooks (newest first; secrets are never shown)",
    description="Every subscription with its URL and event types; the signing secret was shown once, at creation.",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_webhooks(session: SessionDep, _: WebhooksManager, page: Annotated[PageParams, Depends()]) -> Response:
    after = page.keyset(uuid.UUID)
    rows = await service.list_webhooks(session, after=after[0] if after else None, limit=page.limit)
    return model_response(page.page(rows, WebhookRead.model_validate, lambda w: (w.id,)))


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Read a webhook",
    description="The subscription's URL, event types and who created it; never the secret.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_webhook(webhook_id: uuid.UUID, session: SessionDep, _: WebhooksManager) -> Response:
    return model_response(WebhookRead.model_validate(await service.get_webhook(session, webhook_id)))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Unsubscribe: nothing more is sent",
    description="Deliveries still owed are dropped with the webhook; an attempt already in flight may complete.",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, _: WebhooksManager) -> Response:
    await service.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    summary="The delivery log of a webhook, newest event first",
    description="`pending` deliveries are queued or being retried (`next_attempt_at`); `failed` ones were "
    "given up after 3 days.",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    _: WebhooksManager,
    page: Annotated[PageParams, Depends()],
    status: DeliveryStatus | None = None,
) -> Response:
    after = page.keyset(int)
    rows = await service.list_deliveries(
        session, webhook_id=webhook_id, status=status, after=after[0] if after else None, limit=page.limit
    )
    return model_response(page.page(rows, DeliveryRead.model_validate, lambda d: (d.event_id,)))
