"""HTTP routes of purchases: intake, bulk intake, history, the purchase feed."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import Unprocessable, problem_responses
from crm_kit.pagination import FeedPage, FeedParams, Page, PageParams
from crm_kit.schemas import Timestamp, model_response
from customer_api.customers.service import get_customer
from customer_api.purchases import service
from customer_api.purchases.schemas import BulkPurchases, BulkResult, PurchaseCreate, PurchaseFeedItem, PurchaseRead

router = APIRouter(tags=["purchases"])

PurchasesWriter = Annotated[Principal, require("purchases:write")]
PurchasesReader = Annotated[Principal, require("purchases:read")]


def _render(purchase: object, *, status_code: int) -> Response:
    body = PurchaseRead.model_validate(purchase)
    location = f"/v1/purchases/{quote(body.order_id, safe='')}"  # an order system's ids may hold '/', '#', '?'
    return model_response(body, status_code=status_code, headers={"Location": location})


@router.post(
    "/v1/purchases",
    status_code=201,
    response_model=PurchaseRead,
    summary="Record an order with its line items",
    description="`order_id` is the idempotency key: the same order again answers 200 with the stored one; "
    "another body under the same `order_id` is a 409. Purchases for a merged customer go to the surviving profile.",
    responses={
        200: {"description": "The order was already stored", "model": PurchaseRead},
        **problem_responses(401, 403, 409, 422),
    },
)
async def record_purchase(order: PurchaseCreate, session: SessionDep, _: PurchasesWriter) -> Response:
    purchase, created = await service.record_purchase(session, order=order)
    return _render(purchase, status_code=201 if created else 200)


@router.post(
    "/v1/purchases/bulk",
    response_model=BulkResult,
    summary="Record many orders at once",
    description="Up to the configured maximum (10,000 by default) orders per request, in one transaction. "
    "Each order gets its own result: created, existing (same order already stored), conflict or invalid; "
    "bad orders do not reject the good ones. Retrying the whole request creates nothing twice.",
    responses=problem_responses(401, 403, 413, 422),
)
async def import_purchases(request: Request, body: BulkPurchases, session: SessionDep, _: PurchasesWriter) -> Response:
    limit = request.app.state.settings.bulk_max_orders
    if len(body.purchases) > limit:
        raise Unprocessable(f"at most {limit} orders per request", field="purchases")
    return model_response(await service.import_purchases(session, rows=body.purchases))


@router.get(
    "/v1/purchases/{order_id:path}",
    response_model=PurchaseRead,
    summary="Read one order",
    description="The order as stored, by the order system's `order_id`, with its line items and total. "
    "An order of a merged customer names the surviving profile.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_purchase(
    order_id: Annotated[str, Path(max_length=64)], session: SessionDep, _: PurchasesReader
) -> Response:
    return model_response(PurchaseRead.model_validate(await service.get_purchase(session, order_id)))


@router.get(
    "/v1/customers/{customer_id}/purchases",
    response_model=Page[PurchaseRead],
    summary="A customer's orders, newest first",
    description="`since` (inclusive) and `until` (exclusive) bound `purchased_at`.",
    responses=problem_responses(400, 401, 403, 404, 410, 422),
)
async def customer_purchases(
    customer_id: uuid.UUID,
    session: SessionDep,
    _: PurchasesReader,
    page: Annotated[PageParams, Depends()],
    since: Annotated[Timestamp | None, Query()] = None,
    until: Annotated[Timestamp | None, Query()] = None,
) -> Response:
    if since is not None and until is not None and since >= until:
        raise Unprocessable("'since' must be before 'until'", field="since")
    customer = await get_customer(session, customer_id)
    rows = await service.customer_purchases(
        session,
        customer_id=customer.id,
        since=since,
        until=until,
        after=page.keyset(dt.datetime.fromisoformat, int),
        limit=page.limit,
    )
    return model_response(page.page(rows, PurchaseRead.model_validate, lambda p: (p.purchased_at.isoformat(), p.id)))


@router.get(
    "/v1/feeds/purchases",
    response_model=FeedPage[PurchaseFeedItem],
    summary="Purchase feed",
    description="Every stored order in commit order, without gaps or repeats even while orders are written "
    "concurrently. Keep `next_cursor` and pass it as `after` to resume.",
    tags=["feeds"],
    responses=problem_responses(400, 401, 403, 422),
)
async def purchase_feed(
    session: SessionDep, _: Annotated[Principal, require("feeds:read")], feed: Annotated[FeedParams, Depends()]
) -> Response:
    rows = await service.purchase_feed(session, after=feed.position, limit=feed.limit)
    items = [PurchaseFeedItem.model_validate(p) for p in rows]
    return model_response(feed.page(items, lambda p: p.sequence))
