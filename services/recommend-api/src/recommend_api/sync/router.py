"""`POST /v1/sync` and `GET /v1/sync/status`: the copy of customer-api's purchases and customer changes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep, utcnow
from crm_kit.errors import problem_responses
from crm_kit.feeds import FeedPosition
from crm_kit.schemas import model_response
from recommend_api.sync import service
from recommend_api.sync.jobs import sync_now

router = APIRouter(prefix="/v1/sync", tags=["sync"])
MAX_PAGES_PER_CALL = 50


class FeedStatus(BaseModel):
    feed: str
    cursor: str | None = Field(description="Where the next read starts (customer-api's feed cursor)")
    applied: int = Field(description="Entries applied so far")
    caught_up_at: dt.datetime | None = Field(description="When the follower last reached the end of the feed")
    lag_seconds: float | None = Field(description="Seconds since then; null before the first catch-up")
    last_error: str | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, position: FeedPosition, now: dt.datetime) -> FeedStatus:
        return cls(
            feed=position.feed, cursor=position.cursor, applied=position.applied, caught_up_at=position.caught_up_at,
            lag_seconds=position.lag_seconds(now), last_error=position.last_error, updated_at=position.updated_at,
        )  # fmt: skip


class SyncStatusRead(BaseModel):
    purchases: FeedStatus
    customers: FeedStatus
    lines: int = Field(description="Order lines held")
    customers_with_history: int


class SyncRunRead(SyncStatusRead):
    orders_applied: int
    events_applied: int
    more: bool = Field(description="True when this call stopped with entries still waiting; call again")


STATUS_EXAMPLE = {
    "purchases": {
        "feed": "customer-api:purchases",
        "cursor": "eyJwIjo5MDgxN30.Xk2v",
        "applied": 90817,
        "caught_up_at": "2026-11-23T08:00:01Z",
        "lag_seconds": 4.2,
        "last_error": None,
        "updated_at": "2026-11-23T08:00:01Z",
    },
    "customers": {
        "feed": "customer-api:customers",
        "cursor": "eyJwIjo0MjExfQ.b7Qe",
        "applied": 4211,
        "caught_up_at": "2026-11-23T08:00:01Z",
        "lag_seconds": 4.2,
        "last_error": None,
        "updated_at": "2026-11-23T08:00:01Z",
    },
    "lines": 3981204,
    "customers_with_history": 23570,
}


async def _status(session: AsyncSession) -> SyncStatusRead:
    status = await service.sync_status(session)
    now = utcnow()
    return SyncStatusRead(
        purchases=FeedStatus.of(status.purchases, now), customers=FeedStatus.of(status.customers, now),
        lines=status.lines, customers_with_history=status.customers_with_history,
    )  # fmt: skip


@router.post(
    "",
    response_model=SyncRunRead,
    summary="Sync now",
    description="Follow customer-api's customer and purchase feeds now (up to 50 pages per call), instead of "
    "waiting for the schedule. Safe to repeat: lines are keyed by order and line number.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {**STATUS_EXAMPLE, "orders_applied": 120, "events_applied": 8, "more": False}
                }
            }
        },
        **problem_responses(401, 403),
    },
)
async def run_sync(request: Request, _: Annotated[Principal, require("recommendations:admin")]) -> Response:
    # No request transaction: the pass commits page by page in its own sessions.
    result = await sync_now(request.app, max_pages=MAX_PAGES_PER_CALL)
    async with request.app.state.database.session_scope(read_only=True) as session:
        status = await _status(session)
    body = SyncRunRead(
        **status.model_dump(), orders_applied=result.orders, events_applied=result.events, more=result.more
    )
    return model_response(body)


@router.get(
    "/status",
    response_model=SyncStatusRead,
    summary="Sync status",
    description="Each followed feed's cursor, entries applied, lag since the last catch-up and last error.",
    responses={200: {"content": {"application/json": {"example": STATUS_EXAMPLE}}}, **problem_responses(401, 403)},
)
async def sync_status(session: SessionDep, _: Annotated[Principal, require("recommendations:read")]) -> Response:
    return model_response(await _status(session))
