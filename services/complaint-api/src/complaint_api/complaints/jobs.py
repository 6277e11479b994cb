"""Background work of complaint-api: the SLA breach sweep, completing the customer snapshots of complaints and
callbacks taken while customer-api was down, service-recovery work, and following customer-api's customer feed.
Each pass claims its rows (SKIP LOCKED on PostgreSQL), so replicas never double up, and no transaction stays
open while a peer is asked."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy import null, select
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.callbacks.models import Callback
from complaint_api.callbacks.service import apply_snapshot as apply_callback_snapshot
from complaint_api.clients.customer_api import (
    CustomerErased,
    CustomerSnapshot,
    fetch_customer,
    find_customer_by_phone,
)
from complaint_api.complaints.models import Complaint
from complaint_api.complaints.service import apply_snapshot
from complaint_api.config import Settings
from complaint_api.feeds.service import erase_person, follow
from complaint_api.recovery import service as recovery
from complaint_api.recovery.jobs import recovery_pass
from complaint_api.sla.calendar import BusinessCalendar
from complaint_api.sla.service import flag_breaches
from crm_kit.background import repeat, running
from crm_kit.db import Database, skip_locked, utcnow
from crm_kit.http import PeerClient, PeerUnavailable

log = logging.getLogger(__name__)


async def complete_snapshots(
    database: Database, peer: PeerClient, calendar: BusinessCalendar, settings: Settings, limit: int = 50
) -> int:
    """Ask customer-api about complaints and callbacks taken while it was down (for a callback left by phone
    alone: whose number it is). The recovery rules that needed the customer run then."""

    async def complete_complaint(
        session: AsyncSession, complaint: Complaint, snapshot: CustomerSnapshot | None
    ) -> None:
        await apply_snapshot(session, complaint, snapshot, calendar)
        if snapshot is not None:
            await recovery.on_customer_known(session, complaint, settings, "customer-api")

    async def complete_callback(_session: AsyncSession, callback: Callback, snapshot: CustomerSnapshot | None) -> None:
        apply_callback_snapshot(callback, snapshot)

    done = await _complete_pending(database, peer, Complaint, complete_complaint, limit)
    return done + await _complete_pending(database, peer, Callback, complete_callback, limit)


async def _complete_pending(
    database: Database,
    peer: PeerClient,
    model: type[Complaint] | type[Callback],
    complete: Callable[[AsyncSession, Any, CustomerSnapshot | None], Awaitable[None]],
    limit: int,
) -> int:
    """Ask customer-api about the rows of `model` whose snapshot is pending; stops at the first sign it is
    still down.

    No transaction is open while customer-api is asked (a slow peer must not hold the database); the answer
    is applied in a short one, to rows still pending then (another replica may have been quicker).
    """
    async with database.session_scope(read_only=True) as session:
        phone = Callback.phone if model is Callback else null()
        query = select(model.id, model.customer_id, phone).where(model.snapshot_status == "pending")
        pending = (await session.execute(query.order_by(model.created_at).limit(limit))).all()
    done = 0
    for row_id, customer_id, caller_phone in pending:
        erased = False
        try:
            if customer_id is not None:
                snapshot = await fetch_customer(peer, customer_id)
            else:
                # A callback left by phone alone: the customer is whoever's live profile has the number now.
                snapshot = await find_customer_by_phone(peer, caller_phone) if caller_phone else None
        except CustomerErased:
            # Taken after complaint-api applied the erasure (customer-api was down): it goes the same way.
            snapshot, erased = None, True
        except PeerUnavailable:
            break
        async with database.session_scope() as session:
            still = select(model).where(model.id == row_id, model.snapshot_status == "pending")
            row = (await session.execute(skip_locked(session, still))).scalar_one_or_none()
            if row is not None:
                if erased and customer_id is not None:  # only a lookup by id learns of an erasure
                    await erase_person(session, customer_id)
                await complete(session, row, snapshot)
                done += 1
    return done


async def sweep_once(app: FastAPI) -> bool:
    """One pass of the periodic work; False if a recovery step failed (logged)."""
    database: Database = app.state.database
    async with database.session_scope() as session:
        flagged = await flag_breaches(session, now=utcnow())
    if flagged:
        log.info("sla_breaches_flagged", extra={"complaints": len(flagged)})
    settings: Settings = app.state.settings
    await complete_snapshots(database, app.state.customer_api, app.state.calendar, settings)
    recovered = await recovery_pass(
        database, app.state.customer_api, app.state.recommend_api, offer_items=settings.recovery_offer_items
    )
    while await follow(database, app.state.customer_api, app.state.calendar):
        pass  # catch up with the customer feed, a page per transaction
    return recovered


@contextlib.asynccontextmanager
async def background_jobs(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    sweep = repeat("complaint-sweep", lambda: sweep_once(app), every=settings.sweep_seconds, metrics=app.state.metrics)
    async with running({"complaint-sweep": sweep}):
        yield
