"""HTTP routes of complaints: intake, reads, the process steps, notes, timeline, satisfaction."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from complaint_api.complaints import service
from complaint_api.complaints.dependencies import Actor, CalendarDep, ComplaintsReader, Rules, RulesDep, SettingsDep
from complaint_api.complaints.schemas import (
    Answer,
    Cancel,
    Category,
    Channel,
    Close,
    ComplaintCreate,
    ComplaintRead,
    Escalate,
    Hold,
    Note,
    Priority,
    Reopen,
    Reply,
    Resolution,
    SatisfactionCreate,
    Status,
    Suggestion,
    TimelineEvent,
)
from complaint_api.kb.service import get_article, suggest
from complaint_api.recovery import service as recovery
from crm_kit.concurrency import IfMatch, etag
from crm_kit.db import SessionDep
from crm_kit.errors import NotFound, Unprocessable, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])

STEP_ERRORS = problem_responses(401, 403, 404, 409, 412, 422)


def _render(complaint: Any, *, status_code: int = 200, location: bool = False) -> Response:
    headers = {"ETag": etag(complaint.version)}
    if location:
        headers["Location"] = f"/v1/complaints/{complaint.id}"
    return model_response(ComplaintRead.model_validate(complaint), status_code=status_code, headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=ComplaintRead,
    summary="Take a complaint (受理投诉)",
    description="Recorded at once with a number (C<date>-<n>), a priority from severity and the customer's tier, "
    "and up to three suggested knowledge-base answers. An unknown customer is a 422. If customer-api is down "
    "or slow the complaint is still taken, with `snapshot_status: pending`, and completed later.",
    responses=problem_responses(401, 403, 409, 422),
)
async def take_complaint(
    data: ComplaintCreate,
    request: Request,
    session: SessionDep,
    idempotency: IdempotencyDep,
    actor: Actor,
    settings: SettingsDep,
    calendar: CalendarDep,
) -> Response:
    # Ask customer-api before the transaction starts: no database lock is held over a network call.
    lookup = await service.lookup_customer(
        request.app.state.customer_api, data.customer_id, within=settings.intake_lookup_seconds
    )

    async def produce() -> Response:
        found = await suggest(session, f"{data.subject} {data.description}", limit=3)
        suggestions = [Suggestion.model_validate(s, from_attributes=True).model_dump(mode="json") for s in found]
        complaint = await service.take_complaint(
            session,
            data=data,
            actor=actor,
            lookup=lookup,
            suggestions=suggestions,
            timezone=settings.business_timezone,
            calendar=calendar,
        )
        await recovery.on_taken(session, complaint)
        return _render(complaint, status_code=201, location=True)

    return await idempotency.execute(produce)


@router.get(
    "",
    response_model=Page[ComplaintRead],
    summary="Search complaints (the open list and more)",
    description="Newest first. Filters combine: `status`, `customer_id`, `assignee_id`, `department`, `category`, "
    "`priority`, `channel`, `breached` (past a due time); `q` matches the subject, the description or the "
    "exact complaint number.",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_complaints(
    session: SessionDep,
    _: ComplaintsReader,
    page: Annotated[PageParams, Depends()],
    status: Status | None = None,
    customer_id: uuid.UUID | None = None,
    assignee_id: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    category: Category | None = None,
    priority: Priority | None = None,
    channel: Channel | None = None,
    breached: Annotated[bool | None, Query(description="Past a first-response or resolution due time")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> Response:
    after = page.keyset(uuid.UUID)
    rows = await service.search(
        session,
        filters={
            "status": status,
            "customer_id": customer_id,
            "assignee_id": assignee_id,
            "department": department,
            "category": category,
            "priority": priority,
            "channel": channel,
        },
        breached=breached,
        q=q,
        after=after[0] if after else None,
        limit=page.limit,
    )
    return model_response(page.page(rows, ComplaintRead.model_validate, lambda c: (c.id,)))


@router.get(
    "/{complaint_id}",
    response_model=ComplaintRead,
    summary="Read a complaint",
    description="The complaint with its customer snapshot, SLA due times and breaches, knowledge-base "
    "suggestions and satisfaction. The `ETag` header carries the version for `If-Match`.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_complaint(complaint_id: uuid.UUID, session: SessionDep, _: ComplaintsReader) -> Response:
    return _render(await service.get_complaint(session, complaint_id))


async def _step(
    session: SessionDep,
    rules: Rules,
    complaint_id: uuid.UUID,
    action: str,
    actor: str,
    expected_version: int | None,
    *,
    message: str | None = None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Response:
    complaint = await service.transition(
        session,
        complaint_id=complaint_id,
        action=action,
        actor=actor,
        expected_version=expected_version,
        reopen_days=rules.settings.reopen_days,
        calendar=rules.calendar,
        message=message,
        changes=changes,
        data=data,
    )
    if action == "close":
        await recovery.on_closed(session, complaint, rules.settings, actor)
    elif action == "reopen":
        await recovery.on_reopened(session, complaint, actor)
    elif action == "cancel":
        await recovery.on_cancelled(session, complaint, actor)
    return _render(complaint)


@router.post(
    "/{complaint_id}/answer",
    response_model=ComplaintRead,
    summary="Answer on the spot from the manual (step 2: first-contact resolution)",
    description="For an `open` complaint the agent solves in the first contact: the message goes to the customer "
    "(public timeline), the complaint becomes `answered` and counts as resolved at first contact. Send "
    "`If-Match` to guard against a concurrent change; a step not allowed in the current status is a 409.",
    responses=STEP_ERRORS,
)
async def answer(
    complaint_id: uuid.UUID, body: Answer, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    if body.article_id is not None:
        try:
            await get_article(session, body.article_id)
        except NotFound:
            raise Unprocessable(f"no knowledge-base article {body.article_id}", field="article_id") from None
    return await _step(
        session, rules, complaint_id, "answer", actor, version,
        message=body.message, changes={"answered_article_id": body.article_id},
        data={"article_id": str(body.article_id) if body.article_id else None},
    )  # fmt: skip


@router.post(
    "/{complaint_id}/escalate",
    response_model=ComplaintRead,
    summary="Hand to the responsible department and person (step 3)",
    description="From `open` or `reopened` to `escalated`: the department and the assignee own it from now on; "
    "the note stays internal. Counts as the first response. A step not allowed in the current status is a 409.",
    responses=STEP_ERRORS,
)
async def escalate(
    complaint_id: uuid.UUID, body: Escalate, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    return await _step(
        session, rules, complaint_id, "escalate", actor, version, message=body.note,
        changes={"department": body.department, "assignee_id": body.assignee_id},
        data={"department": body.department, "assignee_id": body.assignee_id},
    )  # fmt: skip


@router.post(
    "/{complaint_id}/resolution",
    response_model=ComplaintRead,
    summary="Record the responsible person's result: root cause, resolution, corrective action (step 4)",
    description="From `escalated` to `resolved`. The root cause feeds the statistics; the corrective action "
    "(整改) records what changes so it does not happen again. Internal until replied.",
    responses=STEP_ERRORS,
)
async def resolution(
    complaint_id: uuid.UUID, body: Resolution, session: SessionDep, actor: Actor, rules: RulesDep,
    version: IfMatch,
) -> Response:  # fmt: skip
    return await _step(
        session, rules, complaint_id, "resolution", actor, version, message=body.resolution,
        changes=body.model_dump(), data={"root_cause": body.root_cause},
    )  # fmt: skip


@router.post(
    "/{complaint_id}/reply",
    response_model=ComplaintRead,
    summary="Tell the customer the result (step 5)",
    description="From `resolved` to `replied`: the message goes to the customer (public timeline) and the "
    "complaint counts as solved.",
    responses=STEP_ERRORS,
)
async def reply(
    complaint_id: uuid.UUID, body: Reply, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    return await _step(session, rules, complaint_id, "reply", actor, version, message=body.message)


@router.post(
    "/{complaint_id}/close",
    response_model=ComplaintRead,
    summary="Close the complaint number",
    description="From `answered` or `replied` to `closed`. The closure goes into the customer's contact history, "
    "schedules the follow-ups of a service-recovery plan, or opens one when a recovery rule matches.",
    responses=STEP_ERRORS,
)
async def close(
    complaint_id: uuid.UUID, body: Close, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    return await _step(session, rules, complaint_id, "close", actor, version, message=body.note)


@router.post(
    "/{complaint_id}/reopen",
    response_model=ComplaintRead,
    summary="Reopen a closed complaint (within the reopen window)",
    description="After the window a new complaint is opened with `follows_up` pointing to this one.",
    responses=STEP_ERRORS,
)
async def reopen(
    complaint_id: uuid.UUID, body: Reopen, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    return await _step(session, rules, complaint_id, "reopen", actor, version, message=body.reason)


@router.post(
    "/{complaint_id}/cancel",
    response_model=ComplaintRead,
    summary="Cancel a duplicate or invalid complaint",
    description="From `open` or `escalated` to `cancelled`, with the reason `duplicate` (naming the other "
    "complaint in `duplicate_of`, which must exist and not be cancelled itself), `invalid` or `withdrawn` "
    "(without `duplicate_of`); else a 422 naming `duplicate_of`.",
    responses=STEP_ERRORS,
)
async def cancel(
    complaint_id: uuid.UUID, body: Cancel, session: SessionDep, actor: Actor, rules: RulesDep, version: IfMatch
) -> Response:
    if body.reason != "duplicate" and body.duplicate_of is not None:
        raise Unprocessable(f"only a duplicate names an original; the reason is {body.reason}", field="duplicate_of")
    if body.reason == "duplicate":
        if body.duplicate_of is None or body.duplicate_of == complaint_id:
            raise Unprocessable("a duplicate names the other complaint it duplicates", field="duplicate_of")
        # Locked, so that two complaints cancelled as each other's duplicate at once cannot both pass.
        try:
            original = await service.get_complaint(session, body.duplicate_of, for_update=True)
        except NotFound:
            # The 404 of this route says the complaint being cancelled is missing; this one names a field.
            raise Unprocessable(f"no complaint {body.duplicate_of}", field="duplicate_of") from None
        if original.status == "cancelled":
            raise Unprocessable(
                f"complaint {original.number} is cancelled itself; name the complaint that stays", field="duplicate_of"
            )
    return await _step(
        session, rules, complaint_id, "cancel", actor, version, message=body.note,
        changes={"cancel_reason": body.reason, "duplicate_of": body.duplicate_of},
        data={"reason": body.reason, "duplicate_of": str(body.duplicate_of) if body.duplicate_of else None},
    )  # fmt: skip


@router.post(
    "/{complaint_id}/hold",
    response_model=ComplaintRead,
    summary="Wait on the customer: the SLA clocks stop",
    description="While the complaint waits for the customer (photos, a receipt, a visit), its due times are "
    "cleared so waiting does not count as a breach. Only an open, running complaint can be held (else 409).",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def hold(
    complaint_id: uuid.UUID,
    body: Hold,
    session: SessionDep,
    actor: Actor,
    calendar: CalendarDep,
    version: IfMatch,
) -> Response:
    complaint = await service.hold_clock(
        session, complaint_id=complaint_id, actor=actor, expected_version=version, calendar=calendar,
        reason=body.reason, on_hold=True,
    )  # fmt: skip
    return _render(complaint)


@router.post(
    "/{complaint_id}/resume",
    response_model=ComplaintRead,
    summary="The customer answered: the SLA clocks run again, due times moved out by the time held",
    description="Ends a hold: the due times come back, later by the business time spent waiting. A complaint "
    "that is not on hold is a 409.",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def resume(
    complaint_id: uuid.UUID, session: SessionDep, actor: Actor, calendar: CalendarDep, version: IfMatch
) -> Response:
    complaint = await service.hold_clock(
        session, complaint_id=complaint_id, actor=actor, expected_version=version, calendar=calendar,
        reason=None, on_hold=False,
    )  # fmt: skip
    return _render(complaint)


@router.post(
    "/{complaint_id}/notes",
    status_code=201,
    response_model=TimelineEvent,
    summary="Add an internal note or a public message without changing the state",
    description="`internal` notes are for staff; `public` messages are what the customer was told and show on "
    "the public timeline. The status and the SLA clocks do not change.",
    responses=problem_responses(401, 403, 404, 409, 410, 422),
)
async def add_note(
    complaint_id: uuid.UUID, body: Note, session: SessionDep, idempotency: IdempotencyDep, actor: Actor
) -> Response:
    async def produce() -> Response:
        event = await service.add_note(
            session, complaint_id=complaint_id, actor=actor, note=body.note, visibility=body.visibility
        )
        return model_response(TimelineEvent.model_validate(event), status_code=201)

    return await idempotency.execute(produce, resource=f"/v1/complaints/{complaint_id}/timeline")


@router.get(
    "/{complaint_id}/timeline",
    response_model=Page[TimelineEvent],
    summary="Every change to the complaint, oldest first",
    description="`visibility=public` gives what the customer was told; `internal` the staff side.",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def timeline(
    complaint_id: uuid.UUID,
    session: SessionDep,
    _: ComplaintsReader,
    page: Annotated[PageParams, Depends()],
    visibility: Annotated[str | None, Query(pattern="^(public|internal)$")] = None,
) -> Response:
    after = page.keyset(int)
    rows = await service.timeline(
        session, complaint_id=complaint_id, visibility=visibility, after=after[0] if after else None, limit=page.limit
    )
    return model_response(page.page(rows, TimelineEvent.model_validate, lambda e: (e.id,)))


@router.post(
    "/{complaint_id}/satisfaction",
    response_model=ComplaintRead,
    summary="Record the customer's satisfaction with the handling (step 6)",
    description="Once per closure; a score of 2 or less puts a `satisfaction_low` event on the timeline.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def satisfaction(
    complaint_id: uuid.UUID, body: SatisfactionCreate, session: SessionDep, actor: Actor, settings: SettingsDep
) -> Response:
    complaint = await service.rate(
        session,
        complaint_id=complaint_id,
        actor=actor,
        score=body.score,
        reason_code=body.reason_code,
        comment=body.comment,
    )
    await recovery.on_rated(session, complaint, settings, actor)
    return _render(complaint)
