"""HTTP route of complaint statistics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from complaint_api.complaints.dependencies import ComplaintsReader
from complaint_api.stats.service import complaint_stats
from crm_kit.db import SessionDep, utcnow
from crm_kit.errors import Unprocessable, problem_responses

router = APIRouter(prefix="/v1/stats", tags=["statistics"])


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


class ComplaintStats(BaseModel):
    start: dt.datetime
    end: dt.datetime
    group_by: str | None
    groups: list[GroupStats]


@router.get(
    "/complaints",
    response_model=ComplaintStats,
    summary="Complaint statistics per category, channel, department, assignee, root cause or priority",
    description="Over complaints taken in [from, to) (default: the last 30 days). Rates leave cancelled complaints "
    "out; times are wall-clock hours, median and p90 by the nearest-rank method.",
    responses=problem_responses(401, 403, 422),
)
async def stats(
    session: SessionDep,
    _: ComplaintsReader,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    group_by: Literal["category", "channel", "department", "assignee", "root_cause", "priority"] | None = None,
) -> ComplaintStats:
    end = end or utcnow()
    start = start or end - dt.timedelta(days=30)
    if start >= end:
        raise Unprocessable("'from' must be before 'to'", field="from")
    groups = await complaint_stats(session, start=start, end=end, group_by=group_by)
    return ComplaintStats(start=start, end=end, group_by=group_by, groups=[GroupStats(**g) for g in groups])
