"""HTTP route of the PIPL export: everything complaint-api holds about one customer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response

from complaint_api.privacy.schemas import CustomerExport
from complaint_api.privacy.service import export_customer
from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import problem_responses
from crm_kit.schemas import model_response

router = APIRouter(prefix="/v1/customers", tags=["privacy"])

# The scope customer-api's export asks for: one grant lets a privacy desk export a person from both services, and
# `complaints:read` (desk tools, reports) does not reach a whole person's file, internal notes included.
PersonalDataReader = Annotated[Principal, require("customers:pii")]


@router.get(
    "/{customer_id}/export",
    response_model=CustomerExport,
    summary="Export everything complaint-api holds about a customer (PIPL)",
    description="The customer's complaints with their whole timeline (public messages and internal notes, told "
    "apart by `visibility`), satisfaction scores and comments and customer snapshots; callbacks asked for by the "
    "customer or about their complaints; recovery plans with actions, follow-ups and evidence; and the "
    "contact-history entries still kept for customer-api. Those of profiles merged into this one are found under "
    "this id once the customer feed's merge is applied; a merged id then has nothing. After an erasure the "
    "anonymised remains are exported: numbers, categories, statuses, times and scores, without subjects, "
    "descriptions, notes, comments, names or phones. complaint-api does not ask customer-api whether the "
    "customer exists: an id it holds nothing about gets an empty document (every count 0), not a 404.",
    responses=problem_responses(401, 403, 422),
)
async def export(customer_id: uuid.UUID, session: SessionDep, _: PersonalDataReader) -> Response:
    return model_response(await export_customer(session, customer_id=customer_id))
