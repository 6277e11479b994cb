"""Webhook rules: subscriptions, signing, which events each webhook is owed, and the delivery schedule.

The complaint timeline is the outbox. Fan-out reads a webhook's events past its cursor and queues one
delivery per event (idempotently, unique per webhook and event), advancing the cursor in the same
transaction. Dispatch claims due deliveries with a lease, sends them outside any transaction, and records
the result; per webhook and complaint only the oldest undelivered delivery is eligible, so a receiver sees
a complaint's events in timeline order even across failures; per webhook only a few attempts are in flight
at a time, so a receiver that hangs holds up its own deliveries only. Failures back off exponentially
(capped at 15 minutes) and are retried for three days after the event was queued; then the delivery is
`failed`.

Signature: `X-CRM-Signature: sha256=<hex HMAC-SHA256(secret, "<X-CRM-Timestamp>.<raw body>")>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from uuid_utils.compat import uuid7

from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.webhooks.models import Webhook, WebhookDelivery
from complaint_api.webhooks.schemas import WebhookCreate
from crm_kit.db import skip_locked, utcnow
from crm_kit.errors import NotFound
from crm_kit.idempotency import forget_responses

# Public event name -> the complaint timeline's event type it is made from.
EVENT_TYPES: dict[str, str] = {
    "complaint.created": "created",
    "complaint.status_changed": "status_changed",
    "complaint.sla_breached": "sla_breached",
    "complaint.satisfaction_received": "satisfaction",
    "recovery.plan_created": "recovery_plan_created",
    "recovery.action_due": "recovery_action_due",
    "recovery.outcome_changed": "recovery_outcome_changed",
}
PUBLIC_NAMES = {internal: public for public, internal in EVENT_TYPES.items()}

SIGNATURE_TOLERANCE_SECONDS = 300
MAX_BACKOFF_SECONDS = 900
GIVE_UP_AFTER = dt.timedelta(days=3)
# How long a claimed delivery stays with its sender. It must outlast a send (jobs.SEND_DEADLINE_SECONDS) and
# storing its result; if the sender dies, another replica retries the delivery once the lease runs out.
LEASE = dt.timedelta(seconds=60)
# On PostgreSQL an event id is taken at insert, not at commit: a transaction can commit id 10 after another
# committed id 11. The cursor does not move past such a gap until it is this old (a rolled-back insert
# leaves one for good). Events behind the gap are queued meanwhile; only the cursor waits.
GAP_SETTLE = dt.timedelta(seconds=60)
FAN_OUT_BATCH = 500
# At most this many attempts to one webhook at a time, over all replicas: a receiver that hangs holds this
# many of a sender's slots (jobs.SEND_CONCURRENCY), never all of them.
IN_FLIGHT_PER_WEBHOOK = 3


@dataclass(frozen=True)
class Claim:
    """A delivery taken for one attempt: everything needed to send it without the database."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    event_type: str
    body: bytes
    queued_at: dt.datetime


def generate_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-CRM-Signature header value for a body sent at `timestamp` (unix seconds, as sent)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` (X-CRM-Signature) signs `body` sent at `timestamp` (X-CRM-Timestamp) with `secret`.

    Timestamps more than `tolerance` seconds away from now are refused, so a captured request cannot be
    replayed later; the comparison takes the same time whatever the header holds.
    """
    text = str(timestamp).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(text)) > tolerance:
        return False
    expected = sign(secret, text, body).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: 2, 4, 8 ... seconds, at most 15 minutes, plus jitter.

    The jitter keeps deliveries that failed together (a receiver's outage) from all retrying in the same second.
    """
    seconds = min(2 ** min(attempts, 10), MAX_BACKOFF_SECONDS)
    return dt.timedelta(seconds=seconds + random.uniform(0, seconds / 10))


def _on_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- subscriptions -----------------------------------------------------------------------------------


async def create_webhook(session: AsyncSession, *, data: WebhookCreate, actor: str) -> tuple[Webhook, str | None]:
    """Subscribe; returns the webhook and the secret generated for it (None when the caller chose one).

    Only events after this moment are delivered: the cursor starts at the newest event there is.
    """
    generated = None if data.secret else generate_secret()
    newest = (await session.execute(select(func.max(ComplaintEvent.id)))).scalar_one_or_none()
    webhook = Webhook(
        id=uuid7(),
        url=data.url,
        events=list(dict.fromkeys(data.events)),
        secret=data.secret or generated,
        last_event_id=newest or 0,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(webhook)
    await session.flush()
    return webhook, generated


async def get_webhook(session: AsyncSession, webhook_id: uuid.UUID) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


async def list_webhooks(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> Sequence[Webhook]:
    query = select(Webhook)
    if after is not None:
        query = query.where(Webhook.id < after)
    return (await session.execute(query.order_by(Webhook.id.desc()).limit(limit + 1))).scalars().all()


async def delete_webhook(session: AsyncSession, webhook_id: uuid.UUID) -> None:
    """Unsubscribe. What the webhook was still owed goes with it; an attempt already in flight may finish.

    The stored response to its creation (which showed a generated secret) is forgotten as well: a create retried
    with its `Idempotency-Key` is a 410, neither a replay of a dead subscription nor a new one."""
    deleted = await session.execute(
        delete(Webhook)
        .where(Webhook.id == webhook_id)
        .returning(Webhook.id)
        .execution_options(synchronize_session=False)
    )
    if deleted.first() is None:
        raise NotFound(f"no webhook {webhook_id}")
    await forget_responses(session, f"/v1/webhooks/{webhook_id}", erased=True)


async def list_deliveries(
    session: AsyncSession, *, webhook_id: uuid.UUID, status: str | None, after: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """The delivery log, newest event first."""
    await get_webhook(session, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if after is not None:
        query = query.where(WebhookDelivery.event_id < after)
    return (await session.execute(query.order_by(WebhookDelivery.event_id.desc()).limit(limit + 1))).scalars().all()


# --- fan-out -----------------------------------------------------------------------------------------


def complaint_summary(complaint: Complaint) -> dict[str, Any]:
    """What a delivery says about the complaint. No subject, description, notes or customer snapshot: they
    hold personal data that erasure must be able to remove, and a receiver's copy is out of our reach."""
    return {
        "id": str(complaint.id),
        "number": complaint.number,
        "status": complaint.status,
        "priority": complaint.priority,
        "severity": complaint.severity,
        "category": complaint.category,
        "channel": complaint.channel,
        "customer_id": str(complaint.customer_id),
        "department": complaint.department,
        "assignee_id": complaint.assignee_id,
        "first_response_due": _iso(complaint.first_response_due),
        "resolution_due": _iso(complaint.resolution_due),
        "created_at": _iso(complaint.created_at),
        "updated_at": _iso(complaint.updated_at),
    }


def render_body(delivery_id: uuid.UUID, event: ComplaintEvent, complaint: Complaint) -> str:
    """The JSON body of a delivery. `data` is what the event recorded (its free-text note left out);
    `complaint` is the complaint when the delivery was queued, which may already show later changes."""
    data: dict[str, Any] = dict(event.data or {})
    if event.to_status is not None:
        data.update(from_status=event.from_status, to_status=event.to_status)
    body = {
        "id": str(delivery_id),
        "event": PUBLIC_NAMES[event.type],
        "occurred_at": _iso(event.occurred_at),
        "complaint": complaint_summary(complaint),
        "data": data,
    }
    return orjson.dumps(body).decode()


def next_cursor(
    cursor: int, seen: Sequence[tuple[int, dt.datetime]], now: dt.datetime, settle: dt.timedelta = GAP_SETTLE
) -> int:
    """How far the cursor may move given the event ids (with their times) read past it, in id order.

    It stops before a missing id while the event after the gap is younger than `settle`: the missing event
    may still be committed by a transaction that took its id earlier.
    """
    for event_id, occurred_at in seen:
        if event_id != cursor + 1 and occurred_at > now - settle:
            break
        cursor = event_id
    return cursor


async def webhooks_behind(session: AsyncSession) -> list[uuid.UUID]:
    """Webhooks whose cursor is short of the newest event: the ones fan-out has work for."""
    newest = select(func.max(ComplaintEvent.id)).scalar_subquery()
    rows = await session.execute(select(Webhook.id).where(Webhook.last_event_id < newest).order_by(Webhook.id))
    return list(rows.scalars())


async def fan_out(session: AsyncSession, *, webhook_id: uuid.UUID, now: dt.datetime) -> int:
    """Queue a delivery for each of the webhook's events past its cursor and advance it; returns how many.

    Run in one transaction: the deliveries and the cursor are stored together or not at all.
    """
    query = select(Webhook).where(Webhook.id == webhook_id).execution_options(populate_existing=True)
    # One replica fans out a webhook at a time; the others skip it this round.
    query = skip_locked(session, query)
    webhook = (await session.execute(query)).scalar_one_or_none()
    if webhook is None:
        return 0
    seen = (
        await session.execute(
            select(ComplaintEvent.id, ComplaintEvent.type, ComplaintEvent.occurred_at)
            .where(ComplaintEvent.id > webhook.last_event_id)
            .order_by(ComplaintEvent.id)
            .limit(FAN_OUT_BATCH)
        )
    ).all()
    wanted = {EVENT_TYPES[name] for name in webhook.events if name in EVENT_TYPES}
    ids = [row.id for row in seen if row.type in wanted]
    cursor = next_cursor(webhook.last_event_id, [(row.id, row.occurred_at) for row in seen], now)
    if wanted and len(seen) == FAN_OUT_BATCH and cursor < seen[-1].id:
        ids += await _beyond_gap(session, webhook_id=webhook.id, after=seen[-1].id, types=wanted)
    queued = 0
    if ids:
        # Events past a gap were queued by an earlier pass already (the cursor waited, they did not).
        known = await session.execute(
            select(WebhookDelivery.event_id).where(
                WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.event_id.in_(ids)
            )
        )
        new_ids = sorted(set(ids) - set(known.scalars()))
        rows: list[dict[str, Any]] = []
        if new_ids:
            found = await session.execute(
                select(ComplaintEvent, Complaint)
                .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
                .where(ComplaintEvent.id.in_(new_ids))
                .order_by(ComplaintEvent.id)
            )
            for event, complaint in found:
                delivery_id = uuid7()
                rows.append(
                    {
                        "id": delivery_id,
                        "webhook_id": webhook.id,
                        "event_id": event.id,
                        "complaint_id": complaint.id,
                        "event_type": PUBLIC_NAMES[event.type],
                        "body": render_body(delivery_id, event, complaint),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
        if rows:
            dialect = postgresql if _on_postgres(session) else sqlite
            inserted = await session.execute(
                dialect.insert(WebhookDelivery)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                .returning(WebhookDelivery.id)
            )
            queued = len(inserted.all())
    webhook.last_event_id = cursor
    await session.flush()
    return queued


async def _beyond_gap(session: AsyncSession, *, webhook_id: uuid.UUID, after: int, types: set[str]) -> list[int]:
    """The next batch of the webhook's events past both `after` and the newest event it has queued.

    While the cursor waits at a gap, each pass reads the same batch past it; without this, events further on
    (a burst of SLA breaches behind a transaction cut off by a crash) would wait until the gap settles.
    """
    queued_up_to = await session.execute(
        select(func.max(WebhookDelivery.event_id)).where(WebhookDelivery.webhook_id == webhook_id)
    )
    start = max(after, queued_up_to.scalar_one_or_none() or 0)
    found = await session.execute(
        select(ComplaintEvent.id)
        .where(ComplaintEvent.id > start, ComplaintEvent.type.in_(types))
        .order_by(ComplaintEvent.id)
        .limit(FAN_OUT_BATCH)
    )
    return list(found.scalars())


# --- dispatch ----------------------------------------------------------------------------------------


def _eligible(now: dt.datetime) -> list[ColumnElement[bool]]:
    """Due, and the oldest pending delivery of its webhook and complaint: the later ones wait for it."""
    earlier = aliased(WebhookDelivery)
    waits = exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.complaint_id == WebhookDelivery.complaint_id,
        earlier.status == "pending",
        earlier.event_id < WebhookDelivery.event_id,
    )
    return [WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, ~waits]


def _leased(now: dt.datetime) -> Select[uuid.UUID]:
    """The webhooks with attempts in flight (an unexpired lease), one row each: add a count, or a having."""
    held = aliased(WebhookDelivery)  # not correlated with the deliveries of a query this is put in
    return select(held.webhook_id).where(held.leased_until > now).group_by(held.webhook_id)


def _claimable(now: dt.datetime) -> list[ColumnElement[bool]]:
    """Eligible, and its webhook below its in-flight limit."""
    at_limit = _leased(now).having(func.count() >= IN_FLIGHT_PER_WEBHOOK)
    return [*_eligible(now), WebhookDelivery.webhook_id.not_in(at_limit)]


async def has_due(session: AsyncSession, now: dt.datetime) -> bool:
    """Whether a delivery can be claimed now: a plain read, before taking the write lock to claim."""
    return bool((await session.execute(select(exists().where(*_claimable(now))))).scalar())


async def claim_due(session: AsyncSession, *, now: dt.datetime, limit: int) -> list[Claim]:
    """Take up to `limit` eligible deliveries for one attempt each, leasing them until `now + LEASE`, and no
    more per webhook than its in-flight limit leaves room for.

    Commit before sending: the lease, not a row lock, keeps other replicas off a delivery in flight (and,
    being pending, it keeps its complaint's later deliveries waiting). Replicas claiming at the same moment
    can each see room and together overshoot a webhook's limit for a while; each one's own share stays
    within it, which is what keeps its slots for the other webhooks.
    """
    query = (
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(*_claimable(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if _on_postgres(session):
        # Replicas claiming at once each take rows nobody else holds (SQLite runs one writer at a time).
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    candidates = (await session.execute(query)).all()
    # Counted once the candidates are read (on PostgreSQL, locked), so it includes what other replicas claimed
    # meanwhile; this claim's own picks are added as they are made.
    held = await session.execute(_leased(now).add_columns(func.count()))
    in_flight: Counter[uuid.UUID] = Counter(dict(held.all()))
    claims = []
    for delivery, url, secret in candidates:
        if in_flight[delivery.webhook_id] >= IN_FLIGHT_PER_WEBHOOK:
            continue  # left as it was, for a later claim
        in_flight[delivery.webhook_id] += 1
        delivery.attempts += 1
        delivery.next_attempt_at = delivery.leased_until = now + LEASE
        delivery.last_attempt_at = now
        claims.append(
            Claim(
                delivery_id=delivery.id,
                webhook_id=delivery.webhook_id,
                attempt=delivery.attempts,
                url=url,
                secret=secret,
                event_type=delivery.event_type,
                body=delivery.body.encode(),
                queued_at=delivery.created_at,
            )
        )
    await session.flush()
    return claims


async def record_result(
    session: AsyncSession, claim: Claim, *, status_code: int | None, error: str | None, now: dt.datetime
) -> str | None:
    """Store how an attempt went: 2xx is delivered; anything else is retried later, or given up after
    GIVE_UP_AFTER. Returns the delivery's new status, or None when the attempt no longer owned it (the
    webhook was deleted, or the lease ran out and another attempt took over)."""
    values: dict[str, Any] = {"last_status_code": status_code, "leased_until": None}
    if status_code is not None and 200 <= status_code < 300:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None, last_error=None)
    elif now - claim.queued_at >= GIVE_UP_AFTER:
        values.update(status="failed", next_attempt_at=None, last_error=(error or "failed")[:200])
    else:
        values.update(
            status="pending", next_attempt_at=now + backoff(claim.attempt), last_error=(error or "failed")[:200]
        )
    stored = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.attempts == claim.attempt,
            WebhookDelivery.status == "pending",
        )
        .values(**values)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return str(values["status"]) if stored.first() is not None else None
