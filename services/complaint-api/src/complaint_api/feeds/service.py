"""Applying customer-api's customer feed to complaints and callbacks.

Tier changes raise the priority of the customer's open complaints and waiting callbacks (never lower it) and refresh
the complaints' snapshot; a restriction lifted or imposed, or a consent changed, refreshes the snapshot of all their
complaints (a recovery plan made later holds a tailored offer or not by it); merges move complaints and callbacks to
the surviving profile (what is still open is asked about again as the survivor's); erasure anonymises them (the
complaint stays for statistics, without anything that identifies or was said by the person) and stops what was still
to be done for the person. Each page is applied in one transaction together with the cursor, so a crash neither skips
nor double-applies events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.callbacks.models import Callback
from complaint_api.callbacks.service import raise_priority
from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.complaints.service import PRIORITIES, priority_for
from complaint_api.recovery import service as recovery
from complaint_api.recovery.models import ContactRecord, FollowUp, RecoveryAction, RecoveryPlan
from complaint_api.sla import service as sla
from complaint_api.sla.calendar import BusinessCalendar
from crm_kit.db import Database, utcnow
from crm_kit.feeds import follow_feed
from crm_kit.http import PeerClient
from crm_kit.idempotency import forget_responses

CUSTOMER_FEED = "customer-api:customers"
ERASED = "[已按个人信息保护法删除]"


async def _open_complaints(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Complaint]:
    query = select(Complaint).where(Complaint.customer_id == customer_id, Complaint.status.in_(sla.OPEN_STATES))
    return (await session.execute(query)).scalars().all()


async def _tier_changed(session: AsyncSession, customer_id: uuid.UUID, tier: str, calendar: BusinessCalendar) -> None:
    policies = await sla.policies(session)
    for complaint in await _open_complaints(session, customer_id):
        complaint.customer_snapshot = {**complaint.customer_snapshot, "tier": tier}
        raised = max(complaint.priority, priority_for(complaint.severity, tier), key=PRIORITIES.index)
        if raised != complaint.priority:
            session.add(
                ComplaintEvent(
                    complaint_id=complaint.id, type="priority_changed", actor="customer-feed", occurred_at=utcnow(),
                    visibility="internal", data={"from": complaint.priority, "to": raised, "tier": tier},
                )
            )  # fmt: skip
            complaint.priority = raised
            sla.set_due_times(complaint, calendar, policies[raised])
        complaint.updated_at = utcnow()
    waiting = select(Callback).where(Callback.customer_id == customer_id, Callback.status == "pending")
    for callback in await session.scalars(waiting):
        raise_priority(callback, tier)


async def _marketing_changed(session: AsyncSession, customer_id: uuid.UUID, change: dict[str, Any]) -> None:
    known = select(Complaint).where(Complaint.customer_id == customer_id, Complaint.snapshot_status == "ok")
    for complaint in await session.scalars(known):
        complaint.customer_snapshot = {**complaint.customer_snapshot, **change}
        complaint.updated_at = utcnow()


async def _merged(session: AsyncSession, customer_id: uuid.UUID, into: uuid.UUID) -> None:
    # What is still open is asked about again, as the survivor's: its tier may raise their priority (a gold
    # customer's complaints are never below high), its snapshot replaces the duplicate's. The snapshot pass asks.
    still_open = Complaint.status.in_(sla.OPEN_STATES)
    await session.execute(
        update(Complaint).where(Complaint.customer_id == customer_id, still_open).values(snapshot_status="pending")
    )
    waiting = Callback.status == "pending"
    await session.execute(
        update(Callback).where(Callback.customer_id == customer_id, waiting).values(snapshot_status="pending")
    )
    await session.execute(update(Complaint).where(Complaint.customer_id == customer_id).values(customer_id=into))
    await session.execute(update(Callback).where(Callback.customer_id == customer_id).values(customer_id=into))
    for table in (RecoveryPlan, ContactRecord):
        await session.execute(update(table).where(table.customer_id == customer_id).values(customer_id=into))


async def erase_person(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Drop what complaint-api holds that identifies or was said by the person (the feed's `erased` event, or
    customer-api answering 410 for a complaint or callback taken while it was down)."""
    ids = select(Complaint.id).where(Complaint.customer_id == customer_id)
    # Nobody is left to call back, visit or ask: what was still to be done for them stops.
    await recovery.on_customer_erased(session, customer_id, "customer-feed")
    rated = await session.execute(
        select(Complaint.id, Complaint.satisfaction).where(
            Complaint.customer_id == customer_id, Complaint.satisfaction.is_not(None)
        )
    )
    for complaint_id, satisfaction in rated.all():  # the score stays for the statistics, the person's words go
        await session.execute(
            update(Complaint).where(Complaint.id == complaint_id).values(satisfaction={**satisfaction, "comment": None})
        )
    await session.execute(
        update(Complaint)
        .where(Complaint.customer_id == customer_id)
        .values(customer_snapshot={}, subject=ERASED, description=ERASED, order_id=None)
    )
    # Stored responses to their requests held what they said: a retry is refused (410), not replayed.
    for kind, table in (("complaints", Complaint), ("callbacks", Callback), ("recovery-plans", RecoveryPlan)):
        for (resource_id,) in (await session.execute(select(table.id).where(table.customer_id == customer_id))).all():
            await forget_responses(session, f"/v1/{kind}/{resource_id}", erased=True)
    # Contact-history entries still owed to customer-api (which refuses them now) repeat the complaint's subject.
    await session.execute(delete(ContactRecord).where(ContactRecord.customer_id == customer_id))
    await session.execute(update(ComplaintEvent).where(ComplaintEvent.complaint_id.in_(ids)).values(note=None))
    theirs = or_(Callback.customer_id == customer_id, Callback.complaint_id.in_(ids))
    await session.execute(update(Callback).where(theirs).values(name=None, phone=None, note=None, topic=ERASED))
    await session.execute(
        update(Callback)
        .where(theirs, Callback.status == "pending")
        .values(status="completed", outcome="erased", completed_at=utcnow(), updated_at=utcnow())
    )
    plans = select(RecoveryPlan.id).where(RecoveryPlan.customer_id == customer_id)
    await session.execute(update(RecoveryAction).where(RecoveryAction.plan_id.in_(plans)).values(note=None))
    await session.execute(update(FollowUp).where(FollowUp.plan_id.in_(plans)).values(note=None))


async def apply_events(session: AsyncSession, events: Sequence[dict[str, Any]], calendar: BusinessCalendar) -> None:
    for event in events:
        customer_id = uuid.UUID(event["customer_id"])
        if event["type"] == "tier_changed":
            await _tier_changed(session, customer_id, event["data"]["to"], calendar)
        elif event["type"] in ("restricted", "unrestricted"):
            await _marketing_changed(session, customer_id, {"restricted": event["type"] == "restricted"})
        elif event["type"] == "consent_changed":
            await _marketing_changed(session, customer_id, {"marketing_consent": event["data"].get("marketing")})
        elif event["type"] == "merged":
            await _merged(session, customer_id, uuid.UUID(event["data"]["merged_into"]))
        elif event["type"] == "erased":
            await erase_person(session, customer_id)


async def follow(database: Database, peer: PeerClient, calendar: BusinessCalendar, *, limit: int = 200) -> int:
    """Apply the next page of the customer feed; returns how many events it applied (0 when caught up)."""

    async def apply(session: AsyncSession, events: list[dict[str, Any]]) -> None:
        await apply_events(session, events, calendar)

    followed = await follow_feed(
        database, peer, feed=CUSTOMER_FEED, path="/v1/feeds/customers", apply=apply, limit=limit
    )
    return followed.applied if followed else 0
