"""Background recovery work, one pass per sweep: tailored offers filled in from recommend-api, due actions
announced, due follow-ups evaluated against customer-api's purchases, contact-history entries delivered.

Rows are claimed with SKIP LOCKED on PostgreSQL, so replicas share the work without doing any of it twice;
a peer that is down ends that part of the pass, and the rows wait for the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.clients.customer_api import purchases_between, record_contact
from complaint_api.recovery import service
from complaint_api.recovery.models import ContactRecord, FollowUp, RecoveryAction, RecoveryPlan
from crm_kit.db import Database, utcnow
from crm_kit.http import PeerClient, PeerUnavailable

log = logging.getLogger(__name__)
SWEEP_ACTOR = "recovery-sweep"
BATCH = 20
MAX_BACKOFF = dt.timedelta(minutes=30)


def _claim(session: AsyncSession, query: Select[Any]) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


async def fetch_offer(peer: PeerClient, plan: RecoveryPlan, limit: int) -> list[dict[str, Any]]:
    """recommend-api's win-back offer for the customer, never the complained SKU or its category."""
    params: list[tuple[str, str | int]] = [("limit", limit)]
    params += [("avoid_sku", sku) for sku in plan.avoid_skus]
    params += [("avoid_category", category) for category in plan.avoid_categories]
    response = await peer.get(f"/v1/customers/{plan.customer_id}/recovery-offers", params=params)
    if response.status_code != 200:
        raise PeerUnavailable("recommend-api", f"recovery offers answered {response.status_code}")
    keep = ("sku", "name", "category", "score", "reason")
    return [{k: item.get(k) for k in keep} for item in response.json()["items"]]


async def fill_offers(database: Database, peer: PeerClient, *, limit: int) -> int:
    filled = 0
    async with database.session_scope() as session:
        query = (
            select(RecoveryAction)
            .where(RecoveryAction.type == "tailored_offer", RecoveryAction.offer_status == "pending")
            .order_by(RecoveryAction.plan_id)
            .limit(BATCH)
        )
        for action in (await session.execute(_claim(session, query))).scalars().all():
            plan = await session.get(RecoveryPlan, action.plan_id)
            assert plan is not None
            try:
                offer = await fetch_offer(peer, plan, limit)
            except PeerUnavailable as exc:
                action.offer_attempts += 1
                action.offer_error = str(exc)[:500]
                break
            action.offer, action.offer_status, action.offer_error = offer, "filled", None
            filled += 1
    return filled


async def announce_due_actions(database: Database, now: dt.datetime) -> int:
    """A `recovery_action_due` event (and webhook) for each pending action whose due time has come."""
    async with database.session_scope() as session:
        query = select(RecoveryAction).where(
            RecoveryAction.status == "pending", RecoveryAction.due_notified.is_(False), RecoveryAction.due_at <= now
        )
        due = (await session.execute(_claim(session, query.limit(BATCH * 5)))).scalars().all()
        for action in due:
            plan = await session.get(RecoveryPlan, action.plan_id)
            assert plan is not None
            action.due_notified = True
            session.add(
                service.recovery_event(
                    plan, "recovery_action_due", SWEEP_ACTOR,
                    {"action_id": str(action.id), "type": action.type, "due_at": action.due_at.isoformat()
                     if action.due_at else None, "owner_id": action.owner_id},
                )
            )  # fmt: skip
        return len(due)


async def evaluate_plan(session: AsyncSession, peer: PeerClient, plan: RecoveryPlan, *, actor: str) -> bool:
    """Evaluate one plan now (the caller holds it locked); raises PeerUnavailable without changing anything."""
    now = utcnow()
    orders: list[dict[str, Any]] = []
    if plan.complaint_closed_at is not None:
        found = await purchases_between(
            peer, plan.customer_id, plan.complaint_closed_at,
            min(now, plan.complaint_closed_at + dt.timedelta(days=service.LOST_DAYS)) + dt.timedelta(seconds=1),
        )  # fmt: skip
        orders = [o for o in found or [] if o["purchased_at"] and _after(o["purchased_at"], plan.complaint_closed_at)]
    follow_up_score, coupon_redeemed = service.local_facts(plan)
    facts = service.Facts(
        as_of=now, orders=orders, repeat_complaint=await service.repeat_complaint(session, plan),
        follow_up_satisfaction=follow_up_score, coupon_redeemed=coupon_redeemed,
    )  # fmt: skip
    outcome, evidence = service.decide(plan, facts)
    changed = service.apply_outcome(session, plan, outcome, evidence, actor)
    service.close_follow_ups(plan, now)
    await session.flush()
    return changed


def _after(purchased_at: str, closed_at: dt.datetime) -> bool:
    return dt.datetime.fromisoformat(purchased_at) > closed_at


async def follow_up(database: Database, peer: PeerClient, now: dt.datetime) -> int:
    """Evaluate the plans with a follow-up due; stops (and retries next pass) when customer-api is down."""
    done = 0
    async with database.session_scope() as session:
        due = select(FollowUp.plan_id).where(FollowUp.status == "pending", FollowUp.due_at <= now)
        query = select(RecoveryPlan).where(RecoveryPlan.id.in_(due)).order_by(RecoveryPlan.id).limit(BATCH)
        for plan in (await session.execute(_claim(session, query))).scalars().all():
            try:
                await evaluate_plan(session, peer, plan, actor=SWEEP_ACTOR)
            except PeerUnavailable as exc:
                plan.evaluation_error = str(exc)[:500]
                break
            done += 1
    return done


def _backoff(attempts: int) -> dt.timedelta:
    return min(MAX_BACKOFF, dt.timedelta(seconds=2 ** min(attempts, 12)))


async def send_contacts(database: Database, peer: PeerClient, now: dt.datetime) -> int:
    sent = 0
    async with database.session_scope() as session:
        query = (
            select(ContactRecord)
            .where(ContactRecord.status == "pending", ContactRecord.next_attempt_at <= now)
            .order_by(ContactRecord.created_at)
            .limit(BATCH * 5)
        )
        for record in (await session.execute(_claim(session, query))).scalars().all():
            try:
                stored = await record_contact(peer, record.customer_id, record.body)
            except PeerUnavailable as exc:
                record.attempts += 1
                record.last_error = str(exc)[:500]
                record.next_attempt_at = now + _backoff(record.attempts)
                break
            record.status = "sent" if stored else "dropped"
            sent += 1
    return sent


async def recovery_pass(
    database: Database, customer_api: PeerClient, recommend_api: PeerClient, *, offer_items: int
) -> None:
    now = utcnow()
    for name, step in (
        ("offers", fill_offers(database, recommend_api, limit=offer_items)),
        ("due_actions", announce_due_actions(database, now)),
        ("follow_ups", follow_up(database, customer_api, now)),
        ("contacts", send_contacts(database, customer_api, now)),
    ):
        try:
            await step
        except Exception:
            log.exception("recovery_pass_failed", extra={"step": name})
