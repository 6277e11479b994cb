"""The complaint process of DESIGN §3 as plain functions: intake, transitions, timeline, satisfaction.

States and the actions that move between them:

    open --answer--> answered --close--> closed --reopen--> reopened --escalate--> escalated
    open --escalate--> escalated --resolution--> resolved --reply--> replied --close--> closed
    open | escalated --cancel--> cancelled

Any other move is a 409 naming the actions the complaint's state allows. A transition locks the row,
checks an `If-Match` version when one is sent, and writes a typed event on the timeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from complaint_api.clients.customer_api import CustomerErased, CustomerSnapshot, fetch_customer
from complaint_api.complaints.models import Complaint, ComplaintEvent, ComplaintNumber
from complaint_api.complaints.schemas import ComplaintCreate
from complaint_api.sla import service as sla
from complaint_api.sla.calendar import BusinessCalendar
from crm_kit.concurrency import check_version
from crm_kit.db import utcnow
from crm_kit.errors import Conflict, NotFound, Unprocessable
from crm_kit.http import PeerClient, PeerUnavailable

T = TypeVar("T")

PRIORITIES = ("low", "normal", "high", "urgent")
SEVERITY_PRIORITY = {"low": "low", "medium": "normal", "high": "high", "critical": "urgent"}
# The least priority a customer's tier earns: a gold customer's complaint is never below high.
TIER_FLOOR = {"gold": "high", "silver": "normal"}


@dataclass(frozen=True)
class Transition:
    from_states: frozenset[str]
    to_state: str
    visibility: str  # whether the step's message goes to the customer


TRANSITIONS: dict[str, Transition] = {
    "answer": Transition(frozenset({"open"}), "answered", "public"),
    "escalate": Transition(frozenset({"open", "reopened"}), "escalated", "internal"),
    "resolution": Transition(frozenset({"escalated"}), "resolved", "internal"),
    "reply": Transition(frozenset({"resolved"}), "replied", "public"),
    "close": Transition(frozenset({"answered", "replied"}), "closed", "internal"),
    "reopen": Transition(frozenset({"closed"}), "reopened", "public"),
    "cancel": Transition(frozenset({"open", "escalated"}), "cancelled", "internal"),
}
# Moves after which the customer has had a first response, and after which their problem counts as solved.
RESPONDING = {"answer", "escalate", "reply", "cancel"}
SOLVING = {"answer", "reply"}


def allowed_actions(status: str) -> list[str]:
    return [name for name, t in TRANSITIONS.items() if status in t.from_states]


def priority_for(severity: str, tier: str | None) -> str:
    base = SEVERITY_PRIORITY[severity]
    floor = TIER_FLOOR.get(tier or "regular", "low")
    return max(base, floor, key=PRIORITIES.index)


async def next_number(session: AsyncSession, now: dt.datetime, timezone: str) -> str:
    """C<yyyymmdd>-<nnnn>: a per-day counter taken atomically, so numbers are unique and never reused."""
    day = now.astimezone(ZoneInfo(timezone)).date()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ComplaintNumber)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": ComplaintNumber.last + 1})
        .returning(ComplaintNumber.last)
    )
    number = (await session.execute(statement)).scalar_one()
    return f"C{day:%Y%m%d}-{number:04d}"


def _event(
    complaint: Complaint,
    type_: str,
    actor: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    visibility: str = "internal",
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> ComplaintEvent:
    return ComplaintEvent(
        complaint_id=complaint.id,
        type=type_,
        actor=actor,
        occurred_at=utcnow(),
        from_status=from_status,
        to_status=to_status,
        visibility=visibility,
        note=note,
        data=data or {},
    )


async def ask_at_intake(peer: PeerClient, question: Awaitable[T], *, within: float) -> T:
    """customer-api's answer to `question`, waited for `within` seconds at most. Raises PeerUnavailable when
    customer-api is down, failing or slower than that: intake goes on without the answer."""
    try:
        async with asyncio.timeout(within):
            return await question
    except TimeoutError:
        # Cut off by intake's own deadline, the call never reports to the breaker. A peer that answers, only
        # slower than intake waits, counts as failing: enough of them open the breaker and intake stops asking.
        peer.breaker.record_failure()
        raise PeerUnavailable("customer-api", f"no answer within intake's {within} s") from None


async def lookup_customer(
    peer: PeerClient, customer_id: uuid.UUID, *, within: float
) -> tuple[str, CustomerSnapshot | None]:
    """("ok", snapshot), ("unknown_customer", None) or ("pending", None) when customer-api is down or slow."""
    try:
        snapshot = await ask_at_intake(peer, fetch_customer(peer, customer_id), within=within)
    except CustomerErased:
        return "unknown_customer", None
    except PeerUnavailable:
        return "pending", None
    return ("ok", snapshot) if snapshot is not None else ("unknown_customer", None)


async def take_complaint(
    session: AsyncSession,
    *,
    data: ComplaintCreate,
    actor: str,
    lookup: tuple[str, CustomerSnapshot | None],
    suggestions: Sequence[dict[str, Any]],
    timezone: str,
    calendar: BusinessCalendar,
) -> Complaint:
    """Record a complaint at once (step 1). Unknown customers are refused; if customer-api could not be
    asked, the complaint is kept with its snapshot pending and filled in later."""
    status, snapshot = lookup
    if status == "unknown_customer":
        raise Unprocessable(f"customer {data.customer_id} is not known to customer-api", field="customer_id")
    if data.follows_up is not None:
        followed = await session.get(Complaint, data.follows_up)
        if followed is None:
            raise Unprocessable(f"no complaint {data.follows_up} to follow up", field="follows_up")
        # Another customer's complaint is no follow-up of this one. Checked once customer-api has said who the
        # customer is (the survivor of a merge too); taken while it is down, the link cannot be checked.
        if snapshot is not None and followed.customer_id not in (data.customer_id, snapshot.customer_id):
            raise Unprocessable(f"complaint {followed.number} is another customer's", field="follows_up")
    now = utcnow()
    complaint = Complaint(
        id=uuid7(),
        number="",
        customer_id=snapshot.customer_id if snapshot else data.customer_id,
        customer_snapshot=snapshot.as_json() if snapshot else {},
        snapshot_status=status,
        channel=data.channel,
        category=data.category,
        subject=data.subject,
        description=data.description,
        order_id=data.order_id,
        sku=data.sku,
        severity=data.severity,
        priority=priority_for(data.severity, snapshot.tier if snapshot else None),
        status="open",
        follows_up=data.follows_up,
        suggestions=list(suggestions),
        reopen_count=0,
        sla_pauses=[],
        first_response_breached=False,
        resolution_breached=False,
        created_at=now,
        updated_at=now,
    )
    sla.set_due_times(complaint, calendar, (await sla.policies(session))[complaint.priority])
    # The number last: its per-day counter row stays locked until commit, so hold it as briefly as possible.
    complaint.number = await next_number(session, now, timezone)
    session.add(complaint)
    session.add(
        _event(
            complaint,
            "created",
            actor,
            to_status="open",
            data={"channel": data.channel, "priority": complaint.priority},
        )
    )
    await session.flush()
    return complaint


async def apply_snapshot(
    session: AsyncSession, complaint: Complaint, snapshot: CustomerSnapshot | None, calendar: BusinessCalendar
) -> None:
    """Fill in what customer-api says about the customer; a higher tier raises the priority (never lowers it)."""
    if snapshot is None:
        complaint.snapshot_status = "unknown_customer"
        session.add(
            _event(complaint, "customer_unknown", "customer-api", data={"customer_id": str(complaint.customer_id)})
        )
        return
    complaint.customer_id = snapshot.customer_id
    complaint.customer_snapshot = snapshot.as_json()
    complaint.snapshot_status = "ok"
    raised = max(complaint.priority, priority_for(complaint.severity, snapshot.tier), key=PRIORITIES.index)
    if raised != complaint.priority:
        change = {"from": complaint.priority, "to": raised, "tier": snapshot.tier}
        session.add(_event(complaint, "priority_changed", "customer-api", data=change))
        complaint.priority = raised
        sla.set_due_times(complaint, calendar, (await sla.policies(session))[raised])
    complaint.updated_at = utcnow()


async def hold_clock(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    actor: str,
    expected_version: int | None,
    calendar: BusinessCalendar,
    reason: str | None,
    on_hold: bool,
) -> Complaint:
    """Stop the SLA clocks while waiting on the customer (`on_hold`), or start them again."""
    complaint = await get_complaint(session, complaint_id, for_update=True)
    check_version(complaint.version, expected_version)
    if complaint.status not in sla.OPEN_STATES:
        raise Conflict(f"a {complaint.status} complaint has no running SLA", status_now=complaint.status)
    if on_hold == (complaint.on_hold_since is not None):
        raise Conflict("the complaint is already " + ("on hold" if on_hold else "running"), status_now=complaint.status)
    now = utcnow()
    if on_hold:
        # Due times are void while on hold: a target already missed is flagged now, or no sweep ever would.
        sla.flag_missed(session, complaint, now=now)
        sla.hold(complaint, now)
    else:
        sla.resume(complaint, now)
    sla.set_due_times(complaint, calendar, (await sla.policies(session))[complaint.priority])
    complaint.updated_at = now
    session.add(_event(complaint, "on_hold" if on_hold else "resumed", actor, note=reason))
    await session.flush()
    return complaint


async def get_complaint(session: AsyncSession, complaint_id: uuid.UUID, *, for_update: bool = False) -> Complaint:
    complaint = await session.get(
        Complaint, complaint_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if complaint is None:
        raise NotFound(f"no complaint {complaint_id}")
    return complaint


async def transition(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    action: str,
    actor: str,
    expected_version: int | None,
    reopen_days: int,
    calendar: BusinessCalendar,
    message: str | None = None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Complaint:
    """Apply one action of the process; `changes` are the fields the step records.

    A complaint that closes or is cancelled waits on no one: a hold ends with it. A reopened complaint's
    resolution clock runs on from where it stopped: the time it stood resolved is a pause, as a hold is."""
    rule = TRANSITIONS[action]
    complaint = await get_complaint(session, complaint_id, for_update=True)
    check_version(complaint.version, expected_version)
    if complaint.status not in rule.from_states:
        raise Conflict(
            f"cannot {action} a complaint that is {complaint.status}",
            status_now=complaint.status,
            allowed_actions=allowed_actions(complaint.status),
        )
    now = utcnow()
    if action == "reopen" and complaint.closed_at and now - complaint.closed_at > dt.timedelta(days=reopen_days):
        raise Conflict(
            f"the complaint was closed more than {reopen_days} days ago; open a new complaint with "
            f"follows_up={complaint.id}",
            status_now=complaint.status,
            allowed_actions=[],
        )
    before = complaint.status
    for field, value in (changes or {}).items():
        setattr(complaint, field, value)
    complaint.status = rule.to_state
    complaint.updated_at = now
    if action in RESPONDING and complaint.first_responded_at is None:
        complaint.first_responded_at = now
    if action in SOLVING:
        complaint.resolved_at = now
    if action == "close":
        complaint.closed_at = now
    if complaint.on_hold_since is not None and rule.to_state not in sla.OPEN_STATES:
        sla.resume(complaint, now)
    if action == "reopen":
        stopped = complaint.resolved_at or complaint.closed_at
        if stopped is not None:
            complaint.sla_pauses = [*complaint.sla_pauses, [stopped.isoformat(), now.isoformat()]]
        complaint.reopen_count += 1
        complaint.closed_at = None
        complaint.resolved_at = None
        sla.set_due_times(complaint, calendar, (await sla.policies(session))[complaint.priority])
    session.add(
        _event(
            complaint,
            "status_changed",
            actor,
            from_status=before,
            to_status=rule.to_state,
            visibility=rule.visibility,
            note=message,
            data={"action": action, **(data or {})},
        )
    )
    # A target this step met late is a breach, though no sweep saw it missed (one may not have run since).
    sla.flag_missed(session, complaint, now=now)
    await session.flush()
    return complaint


async def add_note(
    session: AsyncSession, *, complaint_id: uuid.UUID, actor: str, note: str, visibility: str
) -> ComplaintEvent:
    complaint = await get_complaint(session, complaint_id)
    event = _event(
        complaint, "note" if visibility == "internal" else "message", actor, visibility=visibility, note=note
    )
    session.add(event)
    await session.flush()
    return event


async def rate(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    actor: str,
    score: int,
    reason_code: str | None,
    comment: str | None,
) -> Complaint:
    """Step 6: the customer's satisfaction with the handling, once per closure."""
    complaint = await get_complaint(session, complaint_id, for_update=True)
    if complaint.status != "closed":
        raise Conflict("satisfaction is recorded for closed complaints", status_now=complaint.status)
    if complaint.satisfaction and complaint.satisfaction.get("closure") == complaint.reopen_count:
        raise Conflict("satisfaction for this closure is already recorded", status_now=complaint.status)
    now = utcnow()
    complaint.satisfaction = {
        "score": score,
        "reason_code": reason_code,
        "comment": comment,
        "recorded_at": now.isoformat(),
        "closure": complaint.reopen_count,
    }
    complaint.updated_at = now
    session.add(
        _event(complaint, "satisfaction", actor, note=comment, data={"score": score, "reason_code": reason_code})
    )
    if score <= 2:
        session.add(_event(complaint, "satisfaction_low", actor, data={"score": score}))
    await session.flush()
    return complaint


async def timeline(
    session: AsyncSession, *, complaint_id: uuid.UUID, visibility: str | None, after: int | None, limit: int
) -> Sequence[ComplaintEvent]:
    await get_complaint(session, complaint_id)
    query = select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint_id)
    if visibility is not None:
        query = query.where(ComplaintEvent.visibility == visibility)
    if after is not None:
        query = query.where(ComplaintEvent.id > after)
    return (await session.execute(query.order_by(ComplaintEvent.id).limit(limit + 1))).scalars().all()


async def search(
    session: AsyncSession,
    *,
    filters: dict[str, Any],
    breached: bool | None,
    q: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[Complaint]:
    query = select(Complaint)
    if breached is not None:
        either = Complaint.first_response_breached | Complaint.resolution_breached
        query = query.where(either if breached else ~either)
    for field, value in filters.items():
        if value is not None:
            query = query.where(getattr(Complaint, field) == value)
    if q:
        query = query.where(
            # Case-insensitive on both databases (PostgreSQL's LIKE is not): "broken" finds "Broken TV remote".
            Complaint.subject.icontains(q, autoescape=True)
            | Complaint.description.icontains(q, autoescape=True)
            | (Complaint.number == q.upper())
        )
    if after is not None:
        query = query.where(Complaint.id < after)
    return (await session.execute(query.order_by(Complaint.id.desc()).limit(limit + 1))).scalars().all()
