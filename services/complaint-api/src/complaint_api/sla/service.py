"""SLA rules: the policy per priority, due times on the business calendar, the hold clock, breaches.

A complaint's first-response and resolution clocks start at intake and count business time only; while
the complaint is on hold (waiting on the customer) they stop, so due times move out by the time held.
A breach is flagged once per target by the sweep, which claims rows so that replicas never double up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.sla.calendar import BusinessCalendar
from complaint_api.sla.models import SlaPolicy
from crm_kit.db import skip_locked, upsert, utcnow

# Business minutes: (first response, resolution) per priority, until an operator sets their own.
DEFAULT_POLICIES: dict[str, tuple[int, int]] = {
    "urgent": (30, 4 * 60),
    "high": (60, 8 * 60),
    "normal": (4 * 60, 24 * 60),
    "low": (8 * 60, 72 * 60),
}
OPEN_STATES = ("open", "answered", "escalated", "resolved", "replied", "reopened")


async def policies(session: AsyncSession) -> dict[str, tuple[int, int]]:
    stored = (await session.execute(select(SlaPolicy))).scalars().all()
    return DEFAULT_POLICIES | {p.priority: (p.first_response_minutes, p.resolution_minutes) for p in stored}


async def replace_policies(session: AsyncSession, values: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Store the given priorities' policies as one upsert: a PUT sent again, or twice at once, replaces the row
    rather than colliding on its key. In priority order, so that concurrent PUTs lock rows in one order."""
    now = utcnow()
    rows = [
        {"priority": priority, "first_response_minutes": first, "resolution_minutes": resolution, "updated_at": now}
        for priority, (first, resolution) in sorted(values.items())
    ]
    await upsert(session, SlaPolicy.__table__, rows, key=["priority"])
    return await policies(session)


def _pauses(complaint: Complaint) -> list[tuple[dt.datetime, dt.datetime | None]]:
    held = [(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in complaint.sla_pauses]
    return [*held, (complaint.on_hold_since, None)] if complaint.on_hold_since else list(held)


def set_due_times(complaint: Complaint, calendar: BusinessCalendar, policy: tuple[int, int]) -> None:
    """(Re)compute both due times from intake, the policy of the current priority and the holds so far.

    While on hold the clocks stand still: no due time until the complaint is resumed."""
    pauses = _pauses(complaint)
    first, resolution = policy
    complaint.first_response_due = calendar.due(complaint.created_at, dt.timedelta(minutes=first), pauses)
    complaint.resolution_due = calendar.due(complaint.created_at, dt.timedelta(minutes=resolution), pauses)


def hold(complaint: Complaint, now: dt.datetime) -> None:
    complaint.on_hold_since = now


def resume(complaint: Complaint, now: dt.datetime) -> None:
    assert complaint.on_hold_since is not None
    complaint.sla_pauses = [*complaint.sla_pauses, [complaint.on_hold_since.isoformat(), now.isoformat()]]
    complaint.on_hold_since = None


async def flag_breaches(session: AsyncSession, *, now: dt.datetime, limit: int = 200) -> list[Complaint]:
    """Flag complaints past a due time (once per target) and put an `sla_breached` event on their timeline."""
    late_first = (
        Complaint.first_responded_at.is_(None)
        & (Complaint.first_response_due < now)
        & Complaint.first_response_breached.is_(False)
    )
    late_resolution = (
        Complaint.resolved_at.is_(None) & (Complaint.resolution_due < now) & Complaint.resolution_breached.is_(False)
    )
    query = (
        select(Complaint)
        .where(Complaint.status.in_(OPEN_STATES), or_(late_first, late_resolution))
        .order_by(Complaint.created_at)
        .limit(limit)
    )
    flagged = list((await session.execute(skip_locked(session, query))).scalars())
    for complaint in flagged:
        flag_missed(session, complaint, now=now)
    await session.flush()
    return flagged


def flag_missed(session: AsyncSession, complaint: Complaint, *, now: dt.datetime) -> None:
    """Flag each target of `complaint` missed as of `now`: met after its due time, or not met and past it.

    The sweep finds the targets not met; a step of the process (or the start of a hold) calls this on its own
    complaint, so a target met late counts even when no sweep ran between the due time and the step."""
    for target, due in (("first_response", complaint.first_response_due), ("resolution", complaint.resolution_due)):
        met = complaint.first_responded_at if target == "first_response" else complaint.resolved_at
        if getattr(complaint, f"{target}_breached") or due is None or (met or now) <= due:
            continue
        setattr(complaint, f"{target}_breached", True)
        session.add(
            ComplaintEvent(
                complaint_id=complaint.id,
                type="sla_breached",
                actor="sla-sweep",
                occurred_at=now,
                visibility="internal",
                data={"target": target, "due": due.isoformat(), "priority": complaint.priority},
            )
        )


def policy_rows(values: dict[str, tuple[int, int]]) -> Sequence[dict[str, Any]]:
    order = ("urgent", "high", "normal", "low")
    return [
        {"priority": p, "first_response_minutes": values[p][0], "resolution_minutes": values[p][1]}
        for p in order
        if p in values
    ]
