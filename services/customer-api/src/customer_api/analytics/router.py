"""HTTP routes of customer value: per-customer value, segments, churn risk, the CLV model, refreshes,
repurchase rates."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep, utcnow
from crm_kit.errors import NotFound, problem_responses
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response
from customer_api.analytics import jobs, service
from customer_api.analytics.models import AnalyticsJob, ClvModel, CustomerValue
from customer_api.analytics.schemas import (
    ChurnRiskItem,
    ClvModelRead,
    CustomerValueRead,
    JobRead,
    RefreshRequest,
    RepurchaseRead,
    RepurchaseRequest,
    SegmentsRead,
)
from customer_api.config import Settings
from customer_api.customers.models import Customer
from customer_api.customers.schemas import Tier
from customer_api.customers.service import get_customer

router = APIRouter(tags=["analytics"])

AnalyticsReader = Annotated[Principal, require("analytics:read")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get(
    "/v1/customers/{customer_id}/value",
    response_model=CustomerValueRead,
    summary="A customer's value: RFM and segment, tier, established and predicted value, P(alive), churn risk",
    description="From the latest refresh. Customers who are restricted or withdrew profiling consent are not "
    "profiled: `profiled` is false and the analysis fields are empty.",
    responses=problem_responses(401, 403, 404, 410, 422),
)
async def customer_value(customer_id: uuid.UUID, request: Request, session: SessionDep, _: AnalyticsReader) -> Response:
    customer = await get_customer(session, customer_id)
    return model_response(await service.value_of(session, customer, _settings(request)))


@router.post(
    "/v1/analytics/refresh",
    status_code=202,
    response_model=JobRead,
    summary="Recompute every customer's value (background job)",
    description="Returns the job at once. While a refresh is queued or running, asking again (as of the same "
    "moment) returns that same job, whichever replica is asked; as of another moment it is a 409 naming the job. "
    "`as_of` analyses the purchases before that moment only, and cannot be in the future.",
    responses=problem_responses(401, 403, 409, 422),
)
async def refresh(
    data: RefreshRequest,
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    _: Annotated[Principal, require("analytics:write")],
) -> Response:
    job, _created = await jobs.request_refresh(session, as_of=data.as_of)
    # Woken once the response is out, i.e. after the job's row is committed and visible to the worker.
    background.add_task(request.app.state.wake_refresh_worker.set)
    return model_response(
        JobRead.model_validate(job), status_code=202, headers={"Location": f"/v1/analytics/jobs/{job.id}"}
    )


@router.get(
    "/v1/analytics/jobs/{job_id}",
    response_model=JobRead,
    summary="A refresh job: status, progress, result counts",
    description="Poll the job `POST /v1/analytics/refresh` returned (its `Location`) until `status` is "
    "`succeeded` or `failed`; `stats` then counts the customers profiled, valued and moved between tiers.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_job(job_id: uuid.UUID, session: SessionDep, _: AnalyticsReader) -> Response:
    job = await session.get(AnalyticsJob, job_id)
    if job is None:
        raise NotFound(f"no refresh job {job_id}")
    return model_response(JobRead.model_validate(job))


@router.get(
    "/v1/analytics/segments",
    response_model=SegmentsRead,
    summary="Customers and value per RFM segment and per tier",
    description="From the latest refresh: how many customers each RFM segment and each tier holds, what they "
    "spent (established value), what they are expected to spend (predicted value) and the value at risk.",
    responses=problem_responses(401, 403),
)
async def segments(session: SessionDep, _: AnalyticsReader) -> Response:
    model = await service.latest_model(session)
    summary = await service.segment_summary(session)
    return model_response(
        SegmentsRead(as_of=model.as_of if model else None, model_version=model.id if model else None, **summary)
    )


@router.get(
    "/v1/analytics/churn-risk",
    response_model=Page[ChurnRiskItem],
    summary="Valuable customers who are slipping away, most value at risk first",
    description="Worth saving: top spenders or top predicted value. Slipping: low or falling P(alive), or silent "
    "far beyond their own rhythm. Each entry says why. Restricted customers and those without profiling "
    "consent never appear.",
    responses=problem_responses(400, 401, 403, 422),
)
async def churn_risk(
    request: Request,
    session: SessionDep,
    principal: AnalyticsReader,
    page: Annotated[PageParams, Depends()],
    tier: Tier | None = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    segment: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    rows = await service.churn_risk(
        session,
        tier=tier,
        owner_id=owner_id,
        segment=segment,
        after=page.keyset(Decimal, uuid.UUID),  # type: ignore[arg-type]
        limit=page.limit,
    )
    return model_response(page.page(rows, _risk_item, lambda row: (row[0].value_at_risk, row[0].customer_id)))


def _risk_item(row: tuple[CustomerValue, Customer]) -> ChurnRiskItem:
    value, customer = row
    return ChurnRiskItem(
        customer_id=customer.id,
        name=customer.name,
        tier=customer.tier,
        segment=value.segment,
        owner_id=customer.owner_id,
        established_value=value.established_value,
        trailing_spend=value.trailing_spend,
        predicted_value=value.predicted_value,
        p_alive=value.p_alive,
        p_alive_previous=value.p_alive_previous,
        days_since_last_purchase=value.recency_days,
        typical_interval_days=value.typical_interval_days,
        value_at_risk=value.value_at_risk,
        reasons=value.churn_reasons,
    )


@router.get(
    "/v1/analytics/clv-model",
    response_model=ClvModelRead,
    summary="The fitted CLV model: parameters with their time unit, fit date, holdout check",
    description="The BG/NBD and Gamma-Gamma parameters the latest refresh fitted, so analysts can judge and "
    "reproduce the predictions; the holdout compares predicted with actual repeat purchases. 404 before the "
    "first refresh.",
    responses=problem_responses(401, 403, 404),
)
async def clv_model(session: SessionDep, _: AnalyticsReader) -> Response:
    model: ClvModel | None = await service.latest_model(session)
    if model is None:
        raise NotFound("no model has been fitted yet; POST /v1/analytics/refresh")
    unit = {1: "day", 7: "week"}.get(model.time_unit_days, f"{model.time_unit_days} days")
    return model_response(ClvModelRead.model_validate({**vars(model), "time_unit": unit}))


@router.post(
    "/v1/analytics/repurchase",
    response_model=RepurchaseRead,
    summary="Repurchase rates of a period's buyers: the control group for complaint statistics",
    description="Buyers: live customers (not merged, not erased), of `tier` when given, with at least one purchase "
    "in [from, to), minus `exclude_customer_ids` (up to 10,000, e.g. the period's complainants). Anchor: a buyer's "
    "first purchase in the period. Repurchased within N days: another order with anchor < purchased_at ≤ anchor + "
    "N days, in the period or after it. Only buyers whose anchor + N days has passed are eligible for the N-day "
    "window (the rest cannot be judged yet). A POST because the exclusion list is long; nothing is written.",
    responses=problem_responses(401, 403, 422),
)
async def repurchase(data: RepurchaseRequest, session: SessionDep, _: AnalyticsReader) -> Response:
    rates = await service.repurchase_rates(
        session,
        start=data.start,
        end=data.end,
        tier=data.tier,
        exclude=data.exclude_customer_ids,
        windows=data.windows_days,
        now=utcnow(),
    )
    return model_response(RepurchaseRead(**rates))
