"""HTTP routes of the contact history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response
from customer_api.customers.service import get_customer
from customer_api.interactions import service
from customer_api.interactions.schemas import InteractionCreate, InteractionRead, Kind

router = APIRouter(prefix="/v1/customers/{customer_id}/interactions", tags=["interactions"])


@router.post(
    "",
    status_code=201,
    response_model=InteractionRead,
    summary="Record a contact (visit, call, email, complaint, survey, note, callback)",
    description="Idempotent by `Idempotency-Key`, and by `source` + `external_id` for systems that record "
    "their own events (a repeat answers 200 with the stored entry). Entries for a merged id go to the survivor.",
    responses={
        200: {"description": "Already recorded from this source", "model": InteractionRead},
        **problem_responses(401, 403, 404, 410, 422),
    },
)
async def record_interaction(
    customer_id: uuid.UUID,
    data: InteractionCreate,
    session: SessionDep,
    idempotency: IdempotencyDep,
    _: Annotated[Principal, require("interactions:write")],
) -> Response:
    async def produce() -> Response:
        interaction, created = await service.record_interaction(session, customer_id=customer_id, data=data)
        body = InteractionRead.model_validate(interaction)
        location = f"/v1/customers/{body.customer_id}/interactions/{body.id}"
        return model_response(body, status_code=201 if created else 200, headers={"Location": location})

    return await idempotency.execute(produce)


@router.get(
    "",
    response_model=Page[InteractionRead],
    summary="The customer's contact timeline, newest first",
    description="Every visit, call, email, complaint, survey, note and callback recorded for the customer; "
    "`kind` keeps one kind.",
    responses=problem_responses(400, 401, 403, 404, 410, 422),
)
async def list_interactions(
    customer_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, require("interactions:read")],
    page: Annotated[PageParams, Depends()],
    kind: Kind | None = None,
) -> Response:
    customer = await get_customer(session, customer_id)
    rows = await service.customer_interactions(
        session,
        customer_id=customer.id,
        kind=kind,
        after=page.keyset(dt.datetime.fromisoformat, uuid.UUID),
        limit=page.limit,
    )
    return model_response(page.page(rows, InteractionRead.model_validate, lambda i: (i.occurred_at.isoformat(), i.id)))


@router.get(
    "/{interaction_id}",
    response_model=InteractionRead,
    summary="One contact entry",
    description="Where a recorded entry's `Location` points. The id of a merged profile answers 308 to the survivor.",
    responses=problem_responses(401, 403, 404, 410, 422),
)
async def get_interaction(
    customer_id: uuid.UUID,
    interaction_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, require("interactions:read")],
) -> Response:
    customer = await get_customer(session, customer_id)
    interaction = await service.get_interaction(session, customer_id=customer.id, interaction_id=interaction_id)
    return model_response(InteractionRead.model_validate(interaction))
