"""HTTP routes of service recovery: plans, actions, follow-ups and evaluation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from complaint_api.complaints.dependencies import Actor, ComplaintsReader, SettingsDep
from complaint_api.complaints.service import get_complaint
from complaint_api.recovery import service
from complaint_api.recovery.jobs import apply_evaluation, orders_after_closing
from complaint_api.recovery.models import RecoveryPlan
from complaint_api.recovery.schemas import ActionComplete, FollowUpRecord, PlanCreate, PlanRead
from crm_kit.concurrency import IfMatch, check_version, etag
from crm_kit.db import Database, SessionDep, utcnow
from crm_kit.errors import Conflict, ServiceUnavailable, problem_responses
from crm_kit.http import PeerUnavailable
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import Timestamp, model_response

router = APIRouter(tags=["recovery"])
IF_MATCH = " Send `If-Match` with the plan's `ETag` to guard against a concurrent change: 412 when the plan moved on."


def _render(plan: RecoveryPlan, status_code: int = 200) -> Response:
    """The plan as stored: call after the last change is flushed, so its version is the one committed."""
    headers = {"ETag": etag(plan.version), "Location": f"/v1/recovery-plans/{plan.id}"}
    return model_response(PlanRead.model_validate(plan), status_code=status_code, headers=headers)


@router.post(
    "/v1/complaints/{complaint_id}/recovery",
    response_model=PlanRead,
    status_code=201,
    summary="Make a recovery plan (服务复原) for a complaint",
    description="One plan per complaint: 201 when made now, 200 with the existing plan otherwise. Without "
    "`actions`, the plan gets an apology, a callback for gold/silver customers or severe failures, and a "
    "tailored offer from recommend-api that avoids the complained SKU and its category (filled in by the "
    "background pass, retried while recommend-api is down). A tailored offer is marketing: a customer whose snapshot "
    "says they are restricted (PIPL) or withdrew marketing consent gets none by default, and asking for one is a 422. "
    "Before filling an offer the background pass asks customer-api (retried while it is down); for a customer who "
    "takes no marketing the offer is `withheld`, with no items and `offer_withheld_reason`, and recommend-api is not "
    "asked. A withheld offer stays withheld. Follow-ups fall 3, 30 and 90 days after closing. "
    "A plan made for a closed complaint is `following_up` from the start. A cancelled complaint gets none (409); "
    "cancelling a complaint cancels its plan (`status: cancelled`), which is then answered here (200).",
    responses={
        200: {
            "description": "The complaint already has a plan (made by rule or earlier): that plan",
            "model": PlanRead,
        },
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def create_plan(
    complaint_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    idempotency: IdempotencyDep,
    actor: Actor,
    settings: SettingsDep,
    body: PlanCreate | None = None,
) -> Response:
    data = body or PlanCreate()

    async def produce() -> Response:
        complaint = await get_complaint(session, complaint_id, for_update=True)
        plan, created = await service.create_plan(
            session, complaint, settings=settings, actor=actor, triggers=["manual"], owner_id=data.owner_id,
            actions=[service.ActionSpec(**a.model_dump()) for a in data.actions] if data.actions is not None else None,
            controllable=data.controllable, avoid_categories=data.avoid_categories, follow_up_days=data.follow_up_days,
        )  # fmt: skip
        return _render(plan, status_code=201 if created else 200)

    response = await idempotency.execute(produce)
    return response


@router.get(
    "/v1/recovery-plans",
    response_model=Page[PlanRead],
    summary="Recovery plans",
    description="Newest first. `due_before` keeps plans with a pending action or follow-up due before then.",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_plans(
    session: SessionDep,
    _: ComplaintsReader,
    page: Annotated[PageParams, Depends()],
    status: Literal["open", "following_up", "closed", "cancelled"] | None = None,
    outcome: Literal["pending", "recovered", "at_risk", "lost"] | None = None,
    owner_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    customer_id: uuid.UUID | None = None,
    due_before: Timestamp | None = None,
) -> Response:
    rows = await service.list_plans(
        session, status=status, outcome=outcome, owner_id=owner_id, customer_id=customer_id, due_before=due_before,
        after=page.keyset(dt.datetime.fromisoformat, uuid.UUID), limit=page.limit,
    )  # fmt: skip
    return model_response(page.page(rows, PlanRead.model_validate, lambda p: (p.created_at.isoformat(), p.id)))


@router.get(
    "/v1/recovery-plans/{plan_id}",
    response_model=PlanRead,
    summary="A recovery plan with its actions, follow-ups, outcome and evidence",
    description="The outcome (`pending`, `recovered`, `at_risk`, `lost`) comes with the evidence it was decided "
    "on: the first purchase after closing, repurchase within 30 and 90 days, coupon redemption, follow-up scores "
    "and any repeat complaint.",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_plan(plan_id: uuid.UUID, session: SessionDep, _: ComplaintsReader) -> Response:
    return _render(await service.get_plan(session, plan_id))


@router.post(
    "/v1/recovery-plans/{plan_id}/actions/{action_id}/complete",
    response_model=PlanRead,
    summary="Mark a recovery action done",
    description="Records when (and optionally the value, coupon code and expiry). For a coupon, call again "
    "with `redeemed_at` when the customer uses it (not in the future, not after the coupon's expiry, not before "
    "the complaint: 422). Written to the customer's contact history in customer-api. 409 for an action already "
    "done (without `redeemed_at`) or cancelled, or a plan cancelled with its complaint." + IF_MATCH,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def complete_action(
    plan_id: uuid.UUID, action_id: uuid.UUID, body: ActionComplete, session: SessionDep, actor: Actor,
    version: IfMatch,
) -> Response:  # fmt: skip
    plan = await service.get_plan(session, plan_id, for_update=True)
    await service.complete_action(
        session, plan, action_id, actor=actor, note=body.note, value=body.value, coupon_code=body.coupon_code,
        coupon_expires_at=body.coupon_expires_at, redeemed_at=body.redeemed_at, expected_version=version,
    )  # fmt: skip
    return _render(plan)


@router.post(
    "/v1/recovery-plans/{plan_id}/follow-ups/{follow_up_id}",
    response_model=PlanRead,
    summary="Record the customer's score at a follow-up",
    description="A score of 2 or less makes the outcome `at_risk` at the next evaluation. Sending the same score "
    "again (a retry) changes nothing and answers 200 with the plan as it is, whatever `If-Match` says. A different "
    "score corrects the answer: it is stored and written to the customer's contact history as a new survey entry "
    "(the first one stays there: the history is append-only). 409 for a plan cancelled with its complaint." + IF_MATCH,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def record_follow_up(
    plan_id: uuid.UUID, follow_up_id: uuid.UUID, body: FollowUpRecord, session: SessionDep, _: Actor,
    version: IfMatch,
) -> Response:  # fmt: skip
    plan = await service.get_plan(session, plan_id, for_update=True)
    await service.record_follow_up(
        session, plan, follow_up_id, satisfaction=body.satisfaction, note=body.note, expected_version=version
    )
    return _render(plan)


@router.post(
    "/v1/recovery-plans/{plan_id}/evaluate",
    response_model=PlanRead,
    summary="Evaluate a plan's outcome now",
    description="From facts: purchases after closing (customer-api), a later complaint, follow-up scores, "
    "coupon redemption → `recovered`, `at_risk`, `lost` or `pending`, with the evidence. 503 when "
    "customer-api cannot be asked: nothing is decided then, and the stored outcome stays. 409 when the complaint "
    "was reopened or closed meanwhile, or the plan was cancelled with its complaint." + IF_MATCH,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 503),
)
async def evaluate(
    plan_id: uuid.UUID, request: Request, session: SessionDep, actor: Actor, version: IfMatch
) -> Response:
    # customer-api is asked before this request's transaction begins: no lock is held over the call.
    database: Database = request.app.state.database
    async with database.session_scope(read_only=True) as reader:
        seen = await service.get_plan(reader, plan_id)
        check_version(seen.version, version)  # a stale version fails before customer-api is asked
        service.ensure_active(seen)
    now = utcnow()
    try:
        orders = await orders_after_closing(request.app.state.customer_api, seen, now)
    except PeerUnavailable as exc:
        raise ServiceUnavailable(
            "customer-api cannot be asked for the customer's purchases now; try again later",
            headers={"Retry-After": "30"},
        ) from exc
    plan = await service.get_plan(session, plan_id, for_update=True)
    check_version(plan.version, version)
    service.ensure_active(plan)
    if plan.complaint_closed_at != seen.complaint_closed_at:
        raise Conflict("the complaint was reopened or closed again meanwhile; evaluate again", status_now=plan.status)
    await apply_evaluation(session, plan, orders, actor=actor, now=now)
    return _render(plan)
