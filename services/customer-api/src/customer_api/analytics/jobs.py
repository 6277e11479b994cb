"""Refresh jobs: asked for over HTTP, run in the background by whichever replica claims them.

At most one refresh is queued or running (a unique index); a second request joins it. A replica
claims a queued job with a compare-and-set on its status, so two replicas never run one job. The runner
heartbeats while it runs, however long a stage takes; a running job whose heartbeat stops (its replica died)
is queued again for another to pick up, and one whose runner is stopping (SIGTERM) is queued again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from crm_kit.background import holding_claim, repeat, running
from crm_kit.db import Database, utcnow
from crm_kit.errors import Conflict, failure_text
from customer_api.analytics.models import AnalyticsJob
from customer_api.analytics.service import Progress, refresh_values
from customer_api.config import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
STALE_AFTER = dt.timedelta(minutes=2)
HEARTBEAT_SECONDS = STALE_AFTER.total_seconds() / 4


async def request_refresh(session: AsyncSession, *, as_of: dt.datetime | None) -> tuple[AnalyticsJob, bool]:
    """Queue a refresh, or return the one already queued or running as of the same moment; says whether it is new.
    One as of another moment is a 409: it would write other tiers than the caller asked for."""
    job = AnalyticsJob(id=uuid7(), status="queued", as_of=as_of, progress=0.0, requested_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(job)
            await session.flush()
    except IntegrityError:
        active = await session.execute(select(AnalyticsJob).where(AnalyticsJob.status.in_(("queued", "running"))))
        existing = active.scalar_one_or_none()
        if existing is None:  # it finished in between: queue ours after all
            return await request_refresh(session, as_of=as_of)
        if existing.as_of != as_of:
            when = existing.as_of.isoformat() if existing.as_of else "now"
            raise Conflict(
                f"a refresh as of {when} is queued or running; ask again once it has ended",
                headers={"Location": f"/v1/analytics/jobs/{existing.id}"},
            ) from None
        return existing, False
    return job, True


@dataclass(frozen=True)
class _Claim:
    id: uuid.UUID
    as_of: dt.datetime | None
    started_at: dt.datetime  # tells this claim from a later one on the same job (after a stale takeover)


async def _claim(database: Database) -> _Claim | None:
    async with database.session_scope() as session:
        await session.execute(
            update(AnalyticsJob)
            .where(AnalyticsJob.status == "running", AnalyticsJob.heartbeat_at < utcnow() - STALE_AFTER)
            .values(status="queued", stage="requeued after its runner stopped")
        )
        job = (
            await session.execute(select(AnalyticsJob).where(AnalyticsJob.status == "queued").limit(1))
        ).scalar_one_or_none()
        if job is None:
            return None
        now = utcnow()
        claimed = await session.execute(
            update(AnalyticsJob)
            .where(AnalyticsJob.id == job.id, AnalyticsJob.status == "queued")
            .values(status="running", started_at=now, heartbeat_at=now, stage="starting")
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return _Claim(job.id, job.as_of, now)


async def _record(database: Database, *where: ColumnElement[bool], **values: object) -> None:
    async with database.session_scope() as session:
        await session.execute(update(AnalyticsJob).where(*where).values(**values))


async def run_one(database: Database, settings: Settings, *, progress: Progress | None = None) -> str | None:
    """Claim and run one queued refresh; its outcome (`succeeded` or `failed`), None when there was none to claim.
    `progress` hears each stage once it is recorded. Cancelled (the process is stopping), the refresh is queued
    again before the cancellation goes on."""
    claim = await _claim(database)
    if claim is None:
        return None
    job = AnalyticsJob.id == claim.id
    mine = (job, AnalyticsJob.status == "running", AnalyticsJob.started_at == claim.started_at)

    async def record_stage(stage: str, fraction: float) -> None:
        await _record(database, job, stage=stage, progress=fraction, heartbeat_at=utcnow())
        if progress is not None:
            await progress(stage, fraction)

    async def beat() -> None:
        await _record(database, *mine, heartbeat_at=utcnow())

    async def release() -> None:
        await _record(
            database, *mine, status="queued", started_at=None, heartbeat_at=None, progress=0.0,
            stage="requeued: its runner stopped",
        )  # fmt: skip

    async with holding_claim(beat=beat, every=HEARTBEAT_SECONDS, release=release):
        try:
            stats = await refresh_values(database, settings, as_of=claim.as_of or utcnow(), progress=record_stage)
        except Exception as exc:
            log.exception("value_refresh_failed")
            await _record(database, job, status="failed", error=failure_text(exc), finished_at=utcnow())
            return "failed"
        await _record(database, job, status="succeeded", stats=stats, progress=1.0, finished_at=utcnow())
    return "succeeded"


@contextlib.asynccontextmanager
async def refresh_worker(app: FastAPI) -> AsyncIterator[None]:
    """Run queued refreshes in the background for the app's lifetime; a request wakes it early."""
    database: Database = app.state.database
    settings: Settings = app.state.settings
    wake = asyncio.Event()
    app.state.wake_refresh_worker = wake

    async def run_queued() -> bool:
        succeeded = True
        while (outcome := await run_one(database, settings)) is not None:
            succeeded = succeeded and outcome == "succeeded"
        return succeeded

    async def loop() -> None:
        if settings.refresh_on_start:
            async with database.session_scope() as session:
                await request_refresh(session, as_of=None)
        await repeat("value-refresh", run_queued, every=POLL_SECONDS, metrics=app.state.metrics, wake=wake)

    async with running({"value-refresh-worker": loop()}):
        yield
