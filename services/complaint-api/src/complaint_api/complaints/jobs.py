"""Background work of complaint-api: the SLA breach sweep, completing customer snapshots taken while
customer-api was down, service-recovery work, and following customer-api's customer feed. Each pass
claims its rows (SKIP LOCKED on PostgreSQL), so replicas never double up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy import select

from complaint_api.clients.customer_api import fetch_customer
from complaint_api.complaints.models import Complaint
from complaint_api.complaints.service import apply_snapshot
from complaint_api.config import Settings
from complaint_api.feeds.service import follow
from complaint_api.recovery.jobs import recovery_pass
from complaint_api.sla.calendar import BusinessCalendar
from complaint_api.sla.service import flag_breaches
from crm_kit.db import Database, utcnow
from crm_kit.http import PeerClient, PeerUnavailable

log = logging.getLogger(__name__)


async def complete_snapshots(database: Database, peer: PeerClient, calendar: BusinessCalendar, limit: int = 50) -> int:
    """Ask customer-api about complaints taken while it was down; stops at the first sign it still is."""
    done = 0
    async with database.session_scope() as session:
        query = (
            select(Complaint).where(Complaint.snapshot_status == "pending").order_by(Complaint.created_at).limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for complaint in (await session.execute(query)).scalars():
            try:
                snapshot = await fetch_customer(peer, complaint.customer_id)
            except PeerUnavailable:
                break
            await apply_snapshot(session, complaint, snapshot, calendar)
            done += 1
    return done


async def sweep_once(app: FastAPI) -> None:
    database: Database = app.state.database
    async with database.session_scope() as session:
        flagged = await flag_breaches(session, now=utcnow())
    if flagged:
        log.info("sla_breaches_flagged", extra={"complaints": len(flagged)})
    await complete_snapshots(database, app.state.customer_api, app.state.calendar)
    settings: Settings = app.state.settings
    await recovery_pass(
        database, app.state.customer_api, app.state.recommend_api, offer_items=settings.recovery_offer_items
    )
    while True:  # catch up with the customer feed, a page per transaction
        async with database.session_scope() as session:
            applied = await follow(session, app.state.customer_api, app.state.calendar)
        if applied == 0:
            break


@contextlib.asynccontextmanager
async def background_jobs(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings

    async def loop() -> None:
        while True:
            try:
                await sweep_once(app)
            except Exception:
                log.exception("complaint_sweep_failed")
            await asyncio.sleep(settings.sweep_seconds)

    task = asyncio.create_task(loop(), name="complaint-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
