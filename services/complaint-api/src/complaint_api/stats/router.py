"""HTTP routes of complaint and service-recovery statistics."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, PlainSerializer

from complaint_api.complaints.dependencies import ComplaintsReader
from complaint_api.stats.recovery import recovery_stats
from complaint_api.stats.service import complaint_stats
from crm_kit.db import SessionDep, utcnow
from crm_kit.errors import Unprocessable, problem_responses
from crm_kit.schemas import Timestamp

router = APIRouter(prefix="/v1/stats", tags=["statistics"])

Money = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]


def _period(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """[from, to) in UTC, as every time is answered, whatever offset the query wrote (default: the last 30 days)."""
    end = end.astimezone(dt.UTC) if end is not None else utcnow()
    start = start.astimezone(dt.UTC) if start is not None else end - dt.timedelta(days=30)
    if start >= end:
        raise Unprocessable("'from' must be before 'to'", field="from")
    return start, end


class Percentiles(BaseModel):
    median: float | None
    p90: float | None


class GroupStats(BaseModel):
    key: str | None
    volume: int
    first_contact_resolution_rate: float | None
    first_response_hours: Percentiles
    resolution_hours: Percentiles
    sla_breach_rate: float | None
    reopen_rate: float | None
    satisfaction_average: float | None
    satisfaction_responses: int
    recovery_rate: float | None = Field(
        description="Of the recovery plans of the group's complaints: recovered / (recovered + at_risk + lost)"
    )
    repurchase_30d_rate: float | None = Field(
        description="Of those plans whose evaluation already knows (yes or no), the share of yes"
    )
    repurchase_90d_rate: float | None = Field(description="The same over 90 days")


class ComplaintStats(BaseModel):
    start: dt.datetime
    end: dt.datetime
    group_by: str | None
    groups: list[GroupStats]


COMPLAINT_STATS_EXAMPLE = {
    "start": "2026-10-24T00:00:00Z",
    "end": "2026-11-23T00:00:00Z",
    "group_by": "category",
    "groups": [
        {
            "key": "returns_refunds",
            "volume": 214,
            "first_contact_resolution_rate": 0.62,
            "first_response_hours": {"median": 0.4, "p90": 2.1},
            "resolution_hours": {"median": 6.5, "p90": 30.2},
            "sla_breach_rate": 0.047,
            "reopen_rate": 0.019,
            "satisfaction_average": 4.3,
            "satisfaction_responses": 151,
            "recovery_rate": 0.72,
            "repurchase_30d_rate": 0.64,
            "repurchase_90d_rate": 0.81,
        }
    ],
}


@router.get(
    "/complaints",
    response_model=ComplaintStats,
    summary="Complaint statistics per category, channel, department, assignee, root cause or priority",
    description="Over complaints taken in [from, to) (default: the last 30 days). Rates leave cancelled complaints "
    "out; times are wall-clock hours, median and p90 by the nearest-rank method. `recovery_rate`, "
    "`repurchase_30d_rate` and `repurchase_90d_rate` are over the recovery plans of the group's complaints, "
    "whenever the plan was made, as `/v1/stats/recovery` defines them: recovered / (recovered + at_risk + lost), "
    "pending plans left out, and the share of yes among plans whose evaluation already knows (yes or no); null "
    "when no plan counts. They come from the plans' stored outcomes, so they do not depend on customer-api.",
    responses={
        200: {"content": {"application/json": {"example": COMPLAINT_STATS_EXAMPLE}}},
        **problem_responses(401, 403, 422),
    },
)
async def stats(
    session: SessionDep,
    _: ComplaintsReader,
    start: Annotated[Timestamp | None, Query(alias="from")] = None,
    end: Annotated[Timestamp | None, Query(alias="to")] = None,
    group_by: Literal["category", "channel", "department", "assignee", "root_cause", "priority"] | None = None,
) -> ComplaintStats:
    start, end = _period(start, end)
    groups = await complaint_stats(session, start=start, end=end, group_by=group_by)
    return ComplaintStats(start=start, end=end, group_by=group_by, groups=[GroupStats(**g) for g in groups])


class Outcomes(BaseModel):
    pending: int
    recovered: int
    at_risk: int
    lost: int


class Control(BaseModel):
    customers: int = Field(description="Buyers of the period who did not complain, of the control's tier")
    repurchase_30d_rate: float | None
    repurchase_90d_rate: float | None


class RecoveryGroupStats(BaseModel):
    key: str | None
    plans: int
    outcomes: Outcomes
    recovery_rate: float | None = Field(description="recovered / (recovered + at_risk + lost)")
    time_to_first_action_hours: float | None = Field(description="Median, plan to first completed action")
    repurchase_30d_rate: float | None
    repurchase_90d_rate: float | None
    control: Control | None = Field(description="Customers who did not complain; null when customer-api is down")
    satisfaction_before_average: float | None
    satisfaction_before_responses: int
    satisfaction_after_average: float | None
    satisfaction_after_responses: int
    coupon_redemption_rate: float | None
    recovery_cost: Money = Field(description="Done actions' value, points left out")
    cost_per_recovered_customer: Money | None


class RecoveryStats(BaseModel):
    start: dt.datetime
    end: dt.datetime
    group_by: str | None
    control_available: bool = Field(description="false when customer-api could not give the control group")
    groups: list[RecoveryGroupStats]


RECOVERY_STATS_EXAMPLE = {
    "start": "2026-10-24T00:00:00Z",
    "end": "2026-11-23T00:00:00Z",
    "group_by": "tier",
    "control_available": True,
    "groups": [
        {
            "key": "gold",
            "plans": 38,
            "outcomes": {"pending": 6, "recovered": 25, "at_risk": 5, "lost": 2},
            "recovery_rate": 0.781,
            "time_to_first_action_hours": 1.8,
            "repurchase_30d_rate": 0.74,
            "repurchase_90d_rate": 0.86,
            "control": {"customers": 4980, "repurchase_30d_rate": 0.69, "repurchase_90d_rate": 0.88},
            "satisfaction_before_average": 2.4,
            "satisfaction_before_responses": 30,
            "satisfaction_after_average": 4.1,
            "satisfaction_after_responses": 27,
            "coupon_redemption_rate": 0.64,
            "recovery_cost": "1900.00",
            "cost_per_recovered_customer": "76.00",
        }
    ],
}


@router.get(
    "/recovery",
    response_model=RecoveryStats,
    summary="Service-recovery statistics per category, action type, tier or owner",
    description="Over recovery plans created in [from, to) (default: the last 30 days); every figure is over the "
    "group's plans. `action_type`: a plan counts once under each type of its actions that were not cancelled "
    "(plans without any under null). `recovery_rate`: recovered / (recovered + at_risk + lost), pending plans left "
    "out. `time_to_first_action_hours`: median by nearest rank, plan created to first action done. "
    "`repurchase_30d_rate` / `repurchase_90d_rate`: the share of yes among plans whose evaluation already knows "
    "(yes or no). Satisfaction before: the complaint's score; after: every follow-up answer. "
    "`coupon_redemption_rate`: redeemed / issued (done) coupons. `recovery_cost`: value of done actions except "
    "points; `cost_per_recovered_customer`: that / distinct customers with a recovered plan. `control` (the "
    "recovery paradox test): customer-api's 30/90-day repurchase rates of the period's buyers who did not complain "
    "(every complainant of the period left out, up to 10,000) — for the group's tier when grouped by tier, else "
    "for the tier the group's plans share, or every tier when they are mixed; null, with `control_available` "
    "false, when customer-api cannot answer.",
    responses={
        200: {"content": {"application/json": {"example": RECOVERY_STATS_EXAMPLE}}},
        **problem_responses(401, 403, 422),
    },
)
async def recovery(
    request: Request,
    session: SessionDep,
    _: ComplaintsReader,
    start: Annotated[Timestamp | None, Query(alias="from")] = None,
    end: Annotated[Timestamp | None, Query(alias="to")] = None,
    group_by: Literal["category", "action_type", "tier", "owner"] | None = None,
) -> RecoveryStats:
    start, end = _period(start, end)
    groups, control_available = await recovery_stats(
        session, request.app.state.customer_api, start=start, end=end, group_by=group_by
    )
    return RecoveryStats(
        start=start,
        end=end,
        group_by=group_by,
        control_available=control_available,
        groups=[RecoveryGroupStats(**g) for g in groups],
    )
