"""HTTP routes of SLA policies."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from complaint_api.sla import service
from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import Unprocessable, problem_responses
from crm_kit.schemas import RequestModel, WholeNumber

router = APIRouter(prefix="/v1/sla-policies", tags=["sla"])


class PolicyRow(RequestModel):
    priority: Literal["urgent", "high", "normal", "low"]
    first_response_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30), WholeNumber] = Field(
        description="Business minutes"
    )
    resolution_minutes: Annotated[int, Field(ge=1, le=60 * 24 * 90), WholeNumber] = Field(
        description="Business minutes"
    )


class Policies(BaseModel):
    items: list[PolicyRow]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "items": [
                        {"priority": "urgent", "first_response_minutes": 30, "resolution_minutes": 240},
                        {"priority": "high", "first_response_minutes": 60, "resolution_minutes": 480},
                    ]
                }
            ]
        }
    }


class PoliciesUpdate(RequestModel):
    items: list[PolicyRow] = Field(min_length=1, max_length=4)


@router.get(
    "",
    response_model=Policies,
    summary="SLA targets per priority, in business minutes",
    description="How soon a complaint of each priority must get a first response and a resolution, counted in "
    "business minutes of the service calendar (time on hold does not count).",
    responses=problem_responses(401, 403),
)
async def read_policies(session: SessionDep, _: Annotated[Principal, require("complaints:read")]) -> Policies:
    return Policies(items=[PolicyRow(**row) for row in service.policy_rows(await service.policies(session))])


@router.put(
    "",
    response_model=Policies,
    summary="Set SLA targets per priority",
    description="Priorities not listed keep their targets; a priority listed twice is a 422. New targets apply to "
    "complaints taken or re-timed from now on (a priority change or a hold re-times a complaint).",
    responses=problem_responses(401, 403, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {
                        "items": [{"priority": "urgent", "first_response_minutes": 20, "resolution_minutes": 180}]
                    }
                }
            }
        }
    },
)
async def put_policies(
    body: PoliciesUpdate, session: SessionDep, _: Annotated[Principal, require("admin")]
) -> Policies:
    # Keeping the last of two rows silently would hide the mistake in the other one.
    repeated = [priority for priority, rows in Counter(row.priority for row in body.items).items() if rows > 1]
    if repeated:
        raise Unprocessable(f"priority listed more than once: {', '.join(repeated)}", field="items")
    for row in body.items:
        if row.resolution_minutes < row.first_response_minutes:
            raise Unprocessable("resolution cannot be due before the first response", field=row.priority)
    values = {row.priority: (row.first_response_minutes, row.resolution_minutes) for row in body.items}
    stored = await service.replace_policies(session, values)
    return Policies(items=[PolicyRow(**row) for row in service.policy_rows(stored)])
