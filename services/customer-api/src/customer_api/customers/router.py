"""HTTP routes of customer profiles, merges, reassignment, PIPL export and erasure, the customer feed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.auth import Principal, require
from crm_kit.concurrency import IfMatch, etag
from crm_kit.db import SessionDep
from crm_kit.errors import Conflict, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import FeedPage, FeedParams, Page, PageParams
from crm_kit.schemas import model_response
from customer_api.analytics.schemas import CustomerValueRead
from customer_api.customers import service
from customer_api.customers.cache import ProfileCache, Rendering
from customer_api.customers.dependencies import CustomersReader, CustomersWriter, region
from customer_api.customers.export import export_customer
from customer_api.customers.schemas import (
    CustomerCreate,
    CustomerEventRead,
    CustomerRead,
    CustomerType,
    CustomerUpdate,
    MergedTombstone,
    MergeRequest,
    Purpose,
    ReassignRequest,
    ReassignResult,
    Tier,
    customer_read,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])
feed_router = APIRouter(prefix="/v1/feeds", tags=["feeds"])

Region = Annotated[str, Depends(region)]
MOVED = {308: {"description": "Merged into another profile; `Location` names it", "model": MergedTombstone}}
EXPORT_EXAMPLE = {
    "exported_at": "2026-11-23T08:30:00+00:00",
    "profile": {
        "id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
        "type": "individual",
        "status": "active",
        "name": "王芳",
        "phone": "+8613812345678",
        "email": "wang.fang@example.com",
        "gender": "female",
        "birthday": "1988-05-20",
        "address": {"province": "上海市", "city": "上海市", "district": "静安区", "street": "南京西路1266号"},
        "card_number": "VIP20260001",
        "absorbed_identifiers": [{"kind": "phone", "value": "+8613900000021"}],
        "tags": ["母婴", "高频"],
        "attributes": {},
        "owner_id": "staff-017",
        "credit_rating": "AA",
        "tier": "gold",
        "tier_locked": False,
        "segment": "Champions",
        "consents": {"marketing": {"status": "granted", "updated_at": "2026-03-08T06:12:45Z", "source": "app"}},
        "restricted": False,
        "pii_masked": False,
        "version": 3,
        "created_at": "2026-03-08T06:12:45Z",
        "updated_at": "2026-11-01T02:30:00Z",
    },
    "purchases": [
        {
            "order_id": "POS-20261123-000123",
            "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
            "purchased_at": "2026-11-23T02:15:00Z",
            "channel": "store",
            "store_id": "SH-JA-001",
            "currency": "CNY",
            "total": "89.90",
            "items": [
                {"line_no": 1, "sku": "6901234567890", "name": "金龙鱼花生油 5L", "category": "粮油",
                 "quantity": "1", "unit_price": "89.90", "amount": "89.90"}
            ],
            "created_at": "2026-11-23T02:15:04Z",
        }
    ],
    "interactions": [
        {"id": "0196f3a8-1c2d-7e4f-8a90-5b6c7d8e9f01", "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
         "kind": "visit", "occurred_at": "2026-11-23T02:10:00Z", "channel": "store", "direction": "inbound",
         "subject": "到店咨询会员积分", "note": None, "score": None, "staff_id": "sh-ja-003", "source": None,
         "external_id": None, "created_at": "2026-11-23T02:12:30Z"}
    ],
    "events": [
        {"sequence": 1802, "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42", "type": "created",
         "occurred_at": "2026-03-08T06:12:45Z",
         "data": {"type": "individual", "owner_id": "staff-017", "consents": {"marketing": "granted"}}}
    ],
    "value": CustomerValueRead.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
}  # fmt: skip


async def _render(
    session: AsyncSession, customer: Any, principal: Principal, *, status_code: int = 200, location: bool = False
) -> Response:
    absorbed = (await service.absorbed_identifiers(session, [customer.id]))[customer.id]
    show_pii = principal.has("customers:pii")
    return _profile_response(customer, absorbed, show_pii, status_code=status_code, location=location)


def _profile_response(
    customer: Any, absorbed: list[Any], show_pii: bool, *, status_code: int = 200, location: bool = False
) -> Response:
    headers = {"ETag": etag(customer.version)}
    if location:
        headers["Location"] = f"/v1/customers/{customer.id}"
    read = customer_read(customer, absorbed=absorbed, show_pii=show_pii)
    return model_response(read, status_code=status_code, headers=headers)


def _rendering(response: Response) -> Rendering:
    return response.raw_headers, bytes(response.body)


@router.post(
    "",
    status_code=201,
    response_model=CustomerRead,
    summary="Register a customer (建档)",
    description="Creates a profile. Phone, email and card number must not belong to another live profile: "
    "a duplicate is a 409 whose body carries `existing_customer_id`. Send `Idempotency-Key` to retry safely.",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_customer(
    data: CustomerCreate, session: SessionDep, idempotency: IdempotencyDep, principal: CustomersWriter, region: Region
) -> Response:
    async def produce() -> Response:
        customer = await service.create_customer(session, data=data, region=region)
        return await _render(session, customer, principal, status_code=201, location=True)

    return await idempotency.execute(produce)


@router.get(
    "",
    response_model=Page[CustomerRead],
    summary="Search customers",
    description="`q` matches a name fragment, a phone (any format), an email or a card number, a profile's own or "
    "one it absorbed in a merge. `phone` matches that number only (any format; a 422 if it is none), for a peer "
    "asking whose number it is. "
    "`consent` keeps only customers who granted that purpose and are not restricted.",
    responses=problem_responses(400, 401, 403, 422),
)
async def search_customers(
    session: SessionDep,
    principal: CustomersReader,
    page: Annotated[PageParams, Depends()],
    region: Region,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    type: CustomerType | None = None,
    tier: Tier | None = None,
    segment: Annotated[str | None, Query(max_length=32)] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    consent: Purpose | None = None,
) -> Response:
    query = service.search_query(
        session, q=q, phone=phone, type_=type, tier=tier, segment=segment, tag=tag, owner_id=owner_id,
        consent=consent, region=region,
    )  # fmt: skip
    after = page.keyset(uuid.UUID)
    rows = await service.search_customers(session, query, after=after[0] if after else None, limit=page.limit)
    absorbed = await service.absorbed_identifiers(session, [c.id for c in rows])
    show_pii = principal.has("customers:pii")
    return model_response(
        page.page(rows, lambda c: customer_read(c, absorbed=absorbed[c.id], show_pii=show_pii), lambda c: (c.id,))
    )


@router.post(
    "/reassign",
    response_model=ReassignResult,
    summary="Move every customer of one account manager to another",
    description="When a salesperson leaves, their customers move in one call; nothing is lost. Idempotent.",
    responses=problem_responses(401, 403, 422),
)
async def reassign(data: ReassignRequest, session: SessionDep, _: CustomersWriter) -> ReassignResult:
    moved = await service.reassign_owner(session, from_owner_id=data.from_owner_id, to_owner_id=data.to_owner_id)
    return ReassignResult(moved=moved, from_owner_id=data.from_owner_id, to_owner_id=data.to_owner_id)


@router.get(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Read a customer",
    description="PII (phones and emails, absorbed ones too, address, birthday) is masked unless the key has "
    "`customers:pii`.",
    responses={**problem_responses(401, 403, 404, 410, 422), **MOVED},
)
async def read_customer(
    customer_id: uuid.UUID, request: Request, session: SessionDep, principal: CustomersReader
) -> Response:
    cache: ProfileCache = request.app.state.profile_cache
    epoch = cache.epoch  # taken before the read: a change that lands meanwhile keeps this read out
    profile = await service.read_profile(session, customer_id)
    absorbed = (await service.absorbed_identifiers(session, [profile.id]))[profile.id]
    show_pii = principal.has("customers:pii")
    response = _profile_response(profile, absorbed, show_pii)
    # The caller's rendering is this response; the other one is made only if the cache keeps the profile.
    cache.store(
        customer_id,
        epoch,
        lambda pii: _rendering(response if pii == show_pii else _profile_response(profile, absorbed, pii)),
    )
    return response


@router.patch(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Update a customer",
    description="Send `If-Match` with the `ETag` you read: a stale version is a 412 and nothing changes. "
    "`restricted: true` restricts processing (PIPL); consents are set per purpose.",
    responses={**problem_responses(401, 403, 404, 409, 410, 412, 422), **MOVED},
)
async def update_customer(
    customer_id: uuid.UUID,
    data: CustomerUpdate,
    session: SessionDep,
    principal: CustomersWriter,
    expected_version: IfMatch,
    region: Region,
) -> Response:
    customer = await service.update_customer(
        session, customer_id=customer_id, data=data, expected_version=expected_version, region=region
    )
    return await _render(session, customer, principal)


@router.delete(
    "/{customer_id}",
    status_code=204,
    summary="Erase a customer's personal data (PIPL)",
    description="Anonymises the profile and the contact notes; purchases stay, without the person, for statistics. "
    "The id of a profile merged into another is a 409 naming the survivor (`merged_into`), not a redirect: erasing "
    "the person is asked of the surviving profile itself.",
    responses=problem_responses(401, 403, 404, 409, 410, 422),
)
async def erase_customer(
    customer_id: uuid.UUID, session: SessionDep, _: Annotated[Principal, require("customers:erase")]
) -> Response:
    try:
        await service.erase_customer(session, customer_id=customer_id)
    except service.CustomerMoved as moved:
        # A 308, as reads get, would have a client that follows it erase the survivor, which holds more than
        # this profile did.
        raise Conflict(
            f"customer {customer_id} was merged into {moved.merged_into}; erase that profile to erase the person",
            merged_into=str(moved.merged_into),
        ) from None
    return Response(status_code=204)


@router.get(
    "/{customer_id}/export",
    summary="Export everything held about a person (PIPL)",
    description="Profile, consents, purchases with lines, contact history, change events (those of profiles merged "
    "into it too) and the customer's value (RFM, segment, CLV, churn risk), as one JSON document.",
    responses={
        200: {
            "description": "Everything held about the person",
            "content": {"application/json": {"example": EXPORT_EXAMPLE}},
        },
        **problem_responses(401, 403, 404, 410, 422),
        **MOVED,
    },
)
async def export(
    customer_id: uuid.UUID, request: Request, session: SessionDep, _: Annotated[Principal, require("customers:pii")]
) -> dict[str, Any]:
    return await export_customer(session, customer_id=customer_id, settings=request.app.state.settings)


@router.post(
    "/{customer_id}/merge",
    response_model=CustomerRead,
    summary="Merge a duplicate profile into another",
    description="Purchases and contact history move to the target; this id becomes a tombstone whose reads "
    "answer 308 with the target. The duplicate's phone, email and card number, where the target has its own, "
    "become the target's `absorbed_identifiers`: they still find it, and no other profile may take them.",
    responses={**problem_responses(401, 403, 404, 410, 422), **MOVED},
)
async def merge(
    customer_id: uuid.UUID, data: MergeRequest, session: SessionDep, principal: CustomersWriter
) -> Response:
    target = await service.merge_customers(session, duplicate_id=customer_id, target_id=data.target_id)
    return await _render(session, target, principal)


@feed_router.get(
    "/customers",
    response_model=FeedPage[CustomerEventRead],
    summary="Customer change feed",
    description="Created, updated, consent_changed, restricted, unrestricted, tier_changed, merged and erased "
    "events in commit order, without gaps. Events carry ids and non-personal facts only.",
    responses=problem_responses(400, 401, 403, 422),
)
async def customer_feed(
    session: SessionDep,
    _: Annotated[Principal, require("feeds:read")],
    feed: Annotated[FeedParams, Depends()],
) -> Response:
    rows = await service.customer_events(session, after=feed.position, limit=feed.limit)
    events = [CustomerEventRead.model_validate(r) for r in rows]
    return model_response(feed.page(events, lambda e: e.sequence))
