"""HTTP routes of callback requests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response

from complaint_api.callbacks import service
from complaint_api.callbacks.schemas import CallbackComplete, CallbackCreate, CallbackRead
from complaint_api.clients.customer_api import CustomerSnapshot
from complaint_api.complaints.dependencies import Actor, CalendarDep, ComplaintsReader, ComplaintsWriter, SettingsDep
from complaint_api.complaints.service import lookup_customer
from crm_kit.auth import Principal
from crm_kit.concurrency import IfMatch, etag
from crm_kit.db import SessionDep
from crm_kit.errors import Unprocessable, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.phones import mask_phone
from crm_kit.schemas import model_response

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])


def _read(callback: object, principal: Principal) -> CallbackRead:
    """A callback as `principal` may see it: the phone masked without `customers:pii`, as customer-api masks it
    (an agent's desk that dials needs that scope)."""
    read = CallbackRead.model_validate(callback)
    if principal.has("customers:pii"):
        return read
    return read.model_copy(update={"phone": mask_phone(read.phone), "pii_masked": True})


def _render(callback: object, principal: Principal, *, status_code: int = 200) -> Response:
    body = _read(callback, principal)
    headers = {"ETag": etag(body.version), "Location": f"/v1/callbacks/{body.id}"}
    return model_response(body, status_code=status_code, headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=CallbackRead,
    summary="Ask for a call back (「留下电话，客服回电」)",
    description="Due within the configured business minutes, or at `preferred_at` if later. A known customer's "
    "tier sets the priority (gold: high). A `phone` left without `customer_id` or `complaint_id` is looked up: "
    "the callback is the customer's whose live profile has that number, without their name "
    "(`snapshot_status: no_customer` when none has). When customer-api cannot be asked, the callback is kept "
    "with `snapshot_status: pending`, and what it would have said is filled in once it answers. The phone is "
    "masked unless the key has `customers:pii`.",
    responses=problem_responses(401, 403, 409, 410, 422),
)
async def request_callback(
    data: CallbackCreate,
    request: Request,
    session: SessionDep,
    idempotency: IdempotencyDep,
    principal: ComplaintsWriter,
    _: Actor,
    settings: SettingsDep,
    calendar: CalendarDep,
) -> Response:
    # Ask customer-api before the transaction starts: no database lock is held over a network call.
    lookup: tuple[str | None, CustomerSnapshot | None] = (None, None)
    if data.customer_id is not None:
        lookup = await lookup_customer(
            request.app.state.customer_api, data.customer_id, within=settings.intake_lookup_seconds
        )
    elif (phone := service.caller_phone(data)) is not None:
        lookup = await service.lookup_caller(
            request.app.state.customer_api, phone, within=settings.intake_lookup_seconds
        )

    async def produce() -> Response:
        # Refused here, past the replay, as a complaint is: a retry of a callback taken before gets its stored
        # answer (a 410 once the customer is erased), not a 422 because customer-api no longer knows them.
        if lookup[0] == "unknown_customer":
            raise Unprocessable(f"customer {data.customer_id} is not known to customer-api", field="customer_id")
        callback = await service.request_callback(
            session, data=data, lookup=lookup, calendar=calendar,
            within=dt.timedelta(minutes=settings.callback_minutes),
        )  # fmt: skip
        return _render(callback, principal, status_code=201)

    return await idempotency.execute(produce)


@router.get(
    "",
    response_model=Page[CallbackRead],
    summary="The callback queue: due first at the top",
    description="The order agents take calls in: `pending` callbacks by due time (a retried one moves back), "
    "or `completed` ones for review.",
    responses=problem_responses(400, 401, 403, 422),
)
async def callback_queue(
    session: SessionDep,
    principal: ComplaintsReader,
    page: Annotated[PageParams, Depends()],
    status: Literal["pending", "completed"] = "pending",
) -> Response:
    rows = await service.queue(
        session, status=status, after=page.keyset(dt.datetime.fromisoformat, uuid.UUID), limit=page.limit
    )
    return model_response(page.page(rows, lambda c: _read(c, principal), lambda c: (c.due_at.isoformat(), c.id)))


@router.get(
    "/{callback_id}",
    response_model=CallbackRead,
    summary="One callback request, as its Location names it",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_callback(callback_id: uuid.UUID, session: SessionDep, principal: ComplaintsReader) -> Response:
    return _render(await service.get_callback(session, callback_id), principal)


@router.post(
    "/{callback_id}/complete",
    response_model=CallbackRead,
    summary="Record a call: reached, no answer (retried later), or wrong number",
    description="`no_answer` puts the callback back in the queue, due again after the configured business "
    "minutes, until the attempts (3 by default) run out; `reached` and `wrong_number` complete it. A completed "
    "callback is a 409; send `If-Match` against concurrent agents.",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def complete(
    callback_id: uuid.UUID,
    body: CallbackComplete,
    session: SessionDep,
    principal: ComplaintsWriter,
    actor: Actor,
    settings: SettingsDep,
    calendar: CalendarDep,
    version: IfMatch,
) -> Response:
    callback = await service.complete(
        session, callback_id=callback_id, outcome=body.outcome, note=body.note, agent=actor,
        expected_version=version, calendar=calendar, retry_after=dt.timedelta(minutes=settings.callback_minutes),
        max_attempts=settings.callback_attempts,
    )  # fmt: skip
    return _render(callback, principal)
