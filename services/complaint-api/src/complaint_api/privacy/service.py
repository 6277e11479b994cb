"""Everything complaint-api holds about one customer id, read with one query per table.

The id is all complaint-api knows the person by. Applying the customer feed's merges moves complaints, callbacks,
recovery plans and contact records to the surviving profile, so the survivor's id finds what was held under the
ids merged into it. An erased customer's rows stay for the statistics, anonymised by the feed: they are exported
as they are, without anything the person said or was called.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.callbacks.models import Callback
from complaint_api.callbacks.schemas import CallbackRead
from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.complaints.schemas import ComplaintRead, TimelineEvent
from complaint_api.privacy.schemas import (
    ComplaintExport,
    ContactRecordExport,
    CustomerExport,
    ExportCounts,
    PlanExport,
)
from complaint_api.recovery.models import ContactRecord, RecoveryPlan
from crm_kit.db import utcnow


async def export_customer(session: AsyncSession, *, customer_id: uuid.UUID) -> CustomerExport:
    """Internal notes come along with public messages: notes staff wrote about the person are their personal
    information too (PIPL art. 45), and each event's `visibility` tells them apart."""
    complaint_ids = select(Complaint.id).where(Complaint.customer_id == customer_id)
    complaints = (
        await session.scalars(
            select(Complaint).where(Complaint.customer_id == customer_id).order_by(Complaint.created_at, Complaint.id)
        )
    ).all()
    # GET requests read in autocommit: an event of a complaint taken between the two statements has no complaint
    # in this document, and is left out with it.
    timelines: defaultdict[uuid.UUID, list[TimelineEvent]] = defaultdict(list)
    events = await session.scalars(
        select(ComplaintEvent).where(ComplaintEvent.complaint_id.in_(complaint_ids)).order_by(ComplaintEvent.id)
    )
    for event in events:
        timelines[event.complaint_id].append(TimelineEvent.model_validate(event))
    # As erasure reaches them: a callback asked for by phone alone is the customer's when it is about one of
    # their complaints.
    callbacks = await session.scalars(
        select(Callback)
        .where(or_(Callback.customer_id == customer_id, Callback.complaint_id.in_(complaint_ids)))
        .order_by(Callback.created_at, Callback.id)
    )
    plans = await session.scalars(  # actions and follow-ups: one `selectin` query each
        select(RecoveryPlan).where(RecoveryPlan.customer_id == customer_id).order_by(RecoveryPlan.created_at)
    )
    contacts = await session.scalars(
        select(ContactRecord).where(ContactRecord.customer_id == customer_id).order_by(ContactRecord.created_at)
    )
    exported = [ComplaintExport(**dict(ComplaintRead.model_validate(c)), timeline=timelines[c.id]) for c in complaints]
    callback_reads = [CallbackRead.model_validate(c) for c in callbacks]
    plan_reads = [PlanExport.model_validate(p) for p in plans]
    contact_reads = [ContactRecordExport.model_validate(c) for c in contacts]
    return CustomerExport(
        customer_id=customer_id,
        exported_at=utcnow(),
        counts=ExportCounts(
            complaints=len(exported),
            timeline_events=sum(len(c.timeline) for c in exported),
            callbacks=len(callback_reads),
            recovery_plans=len(plan_reads),
            contact_records=len(contact_reads),
        ),
        complaints=exported,
        callbacks=callback_reads,
        recovery_plans=plan_reads,
        contact_records=contact_reads,
    )
