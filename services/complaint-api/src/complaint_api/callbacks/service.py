"""Callback rules: who calls back whom by when, in which order, and what happens when nobody answers.

A callback is due within the configured business minutes (or at the preferred time, if later); a gold
customer's request is high priority. A callback left by phone alone is the customer's whose live profile has
that number, so their erasure and their export reach it. When customer-api cannot be asked, the callback is kept
with its snapshot pending, and the customer (for a phone alone), their name and tier are filled in once it
answers. The queue is pending callbacks by due time. An unanswered call is retried after the same interval until
the attempts run out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from complaint_api.callbacks.models import Callback
from complaint_api.callbacks.schemas import CallbackCreate
from complaint_api.clients.customer_api import CustomerSnapshot, find_customer_by_phone
from complaint_api.complaints.models import Complaint
from complaint_api.complaints.service import PRIORITIES, ask_at_intake, priority_for
from complaint_api.sla.calendar import BusinessCalendar
from crm_kit.concurrency import check_version
from crm_kit.db import utcnow
from crm_kit.errors import Conflict, NotFound, Unprocessable
from crm_kit.http import PeerClient, PeerUnavailable
from crm_kit.phones import normalize_phone

PHONE_REGION = "CN"


def caller_phone(data: CallbackCreate) -> str | None:
    """The number to ask customer-api about: a phone left alone, with neither a customer nor a complaint (which
    names the customer itself); None when there is none to ask about, or it is no phone number (refused later)."""
    if data.phone is None or data.customer_id is not None or data.complaint_id is not None:
        return None
    try:
        return normalize_phone(data.phone, PHONE_REGION)
    except Unprocessable:
        return None


async def lookup_caller(peer: PeerClient, phone: str, *, within: float) -> tuple[str, CustomerSnapshot | None]:
    """Whose number `phone` is: ("ok", snapshot) of the live profile that has it, ("no_customer", None) when none
    has, or ("pending", None) when customer-api is down or slow (the snapshot pass asks again)."""
    try:
        snapshot = await ask_at_intake(peer, find_customer_by_phone(peer, phone), within=within)
    except PeerUnavailable:
        return "pending", None
    return ("ok", snapshot) if snapshot is not None else ("no_customer", None)


async def request_callback(
    session: AsyncSession,
    *,
    data: CallbackCreate,
    lookup: tuple[str | None, CustomerSnapshot | None],
    calendar: BusinessCalendar,
    within: dt.timedelta,
) -> Callback:
    """Take a callback request. `lookup` is what customer-api said about its customer (`data.customer_id`, or
    whoever has the phone left alone): the snapshot status, and the snapshot when it knew them; (None, None)
    when nobody was asked. An unknown customer id is refused before."""
    snapshot_status, snapshot = lookup
    customer_id = snapshot.customer_id if snapshot else data.customer_id
    tier = snapshot.tier if snapshot else None
    # The profile's name is filled in for a customer named by id, never for a number: a key that may take
    # callbacks would otherwise learn whose number any phone is.
    name = snapshot.name if snapshot and data.customer_id is not None else None
    if data.complaint_id is not None:
        complaint = await session.get(Complaint, data.complaint_id)
        if complaint is None:
            raise Unprocessable(f"no complaint {data.complaint_id}", field="complaint_id")
        # The complaint's customer is the callback's: their erasure reaches it, and what is known of them counts.
        if customer_id is not None and complaint.customer_id not in (customer_id, data.customer_id):
            raise Unprocessable(f"complaint {complaint.number} is another customer's", field="complaint_id")
        customer_id = complaint.customer_id
        if snapshot is None:
            known = complaint.customer_snapshot or {}
            tier, name = known.get("tier"), known.get("name")
            snapshot_status = complaint.snapshot_status
    now = utcnow()
    # Kept, and answered, in UTC whatever offset it was sent in.
    preferred_at = data.preferred_at.astimezone(dt.UTC) if data.preferred_at is not None else None
    due = calendar.add(now, within)
    if preferred_at is not None and preferred_at > due:
        due = preferred_at
    callback = Callback(
        id=uuid7(),
        customer_id=customer_id,
        name=data.name or name,
        snapshot_status=snapshot_status,
        phone=normalize_phone(data.phone, PHONE_REGION) if data.phone else None,
        topic=data.topic,
        channel=data.channel,
        complaint_id=data.complaint_id,
        priority=_priority(tier),
        preferred_at=preferred_at,
        due_at=due,
        status="pending",
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(callback)
    await session.flush()
    return callback


def _priority(tier: str | None) -> str:
    """A callback weighs as a medium complaint: normal, high for a gold customer."""
    return priority_for("medium", tier)


def apply_snapshot(callback: Callback, snapshot: CustomerSnapshot | None) -> None:
    """Fill in what customer-api says about the customer, as a request does when it can ask at once: who they are
    (for a phone left alone), their name when the caller gave none (named by id only, as at intake), and the
    priority their tier earns. The due time stays: it follows the clock and the preferred time, not the tier."""
    if snapshot is None:
        # An id customer-api does not know, or a number no live profile has: the caller stays anonymous.
        callback.snapshot_status = "unknown_customer" if callback.customer_id is not None else "no_customer"
        callback.updated_at = utcnow()
    else:
        if callback.customer_id is not None:
            callback.name = callback.name or snapshot.name
        callback.customer_id = snapshot.customer_id
        callback.snapshot_status = "ok"
        raise_priority(callback, snapshot.tier)


def raise_priority(callback: Callback, tier: str | None) -> None:
    """The priority the customer's tier earns: raised, never lowered."""
    callback.priority = max(callback.priority, _priority(tier), key=PRIORITIES.index)
    callback.updated_at = utcnow()


async def get_callback(session: AsyncSession, callback_id: uuid.UUID) -> Callback:
    callback = await session.get(Callback, callback_id)
    if callback is None:
        raise NotFound(f"no callback {callback_id}")
    return callback


async def complete(
    session: AsyncSession,
    *,
    callback_id: uuid.UUID,
    outcome: str,
    note: str | None,
    agent: str,
    expected_version: int | None,
    calendar: BusinessCalendar,
    retry_after: dt.timedelta,
    max_attempts: int,
) -> Callback:
    callback = await session.get(Callback, callback_id, with_for_update=True, populate_existing=True)
    if callback is None:
        raise NotFound(f"no callback {callback_id}")
    check_version(callback.version, expected_version)
    if callback.status != "pending":
        raise Conflict("the callback is already completed", status_now=callback.status)
    now = utcnow()
    callback.attempts += 1
    callback.outcome, callback.note, callback.agent, callback.updated_at = outcome, note, agent, now
    if outcome == "no_answer" and callback.attempts < max_attempts:
        callback.due_at = calendar.add(now, retry_after)
    else:
        callback.status = "completed"
        callback.completed_at = now
    await session.flush()
    return callback


async def queue(
    session: AsyncSession, *, status: str, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> Sequence[Callback]:
    """Callbacks in the order agents should take them: the one due first at the top."""
    query = select(Callback).where(Callback.status == status)
    if after is not None:
        due, last_id = after
        query = query.where(or_(Callback.due_at > due, and_(Callback.due_at == due, Callback.id > last_id)))
    return (await session.execute(query.order_by(Callback.due_at, Callback.id).limit(limit + 1))).scalars().all()
